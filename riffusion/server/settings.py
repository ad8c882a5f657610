"""Server settings: one frozen value built by the command lines (or by tests) and handed to ``create_app``.

The field defaults here are the only place a server default is written: ``riffusion serve`` and
``python -m riffusion.server`` read them from :data:`DEFAULT_SETTINGS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing as T


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """How the inference server runs. Every field has a safe default."""

    model: T.Optional[str] = None  # None: the package's default model (the shipped one)
    device: str = "auto"
    host: str = "127.0.0.1"  # loopback unless told otherwise: exposing a model is a decision
    port: int = 3013
    # Steps the web app should ask for; None measures at start-up how many keep up with playback.
    num_inference_steps: T.Optional[int] = None
    phase: str = "default"  # phase reconstruction method for audio, "name" or "name:iterations"
    queue_size: int = 32  # requests waiting for the model; more get 503 + Retry-After
    max_batch_size: int = 4  # requests denoised together in one UNet batch
    batch_wait_ms: float = 15.0  # how long the worker waits for company before running a lone request
    request_timeout_s: float = 120.0
    cache_size: int = 64  # identical requests answered from memory (encoded responses)
    cache_max_bytes: int = 48 * 1024 * 1024  # and at most this much of them (a WAV clip is ~1.2 MB)
    max_body_bytes: int = 64 * 1024
    max_prompt_chars: int = 2000
    max_inference_steps: int = 150
    # A session rendered by POST /api/v1/render holds the model for all its clips: at most this many, and
    # at most this many seconds of audio (clips and the bars looped while one was late).
    max_render_clips: int = 64
    max_render_s: float = 900.0
    cors_origins: tuple[str, ...] = ()  # CORS is off unless origins are configured
    log_prompts: bool = False  # request logs never carry prompt text unless asked
    # Measure at start-up, with a few short clips, how many steps keep up with playback (and warm the caches).
    warmup: bool = True

    def __post_init__(self) -> None:
        checks = {
            "port": 0 <= self.port <= 65535,
            "queue_size": self.queue_size >= 1,
            "max_batch_size": self.max_batch_size >= 1,
            "batch_wait_ms": self.batch_wait_ms >= 0,
            "request_timeout_s": self.request_timeout_s > 0,
            "cache_size": self.cache_size >= 0,
            "cache_max_bytes": self.cache_max_bytes >= 0,
            "max_body_bytes": self.max_body_bytes >= 1024,
            "max_inference_steps": self.max_inference_steps >= 1,
            "max_render_clips": self.max_render_clips >= 1,
            "max_render_s": self.max_render_s > 0,
            "num_inference_steps": self.num_inference_steps is None
            or 1 <= self.num_inference_steps <= self.max_inference_steps,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid server setting {name}={getattr(self, name)!r}")


#: Every setting at its default (what the command lines show and fall back to).
DEFAULT_SETTINGS = ServerSettings()


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """The warm-up and step options both server command lines take (``num_inference_steps``,
    ``max_inference_steps``, ``warmup``), with :data:`DEFAULT_SETTINGS`' defaults."""
    parser.add_argument("--num-inference-steps", type=int, default=DEFAULT_SETTINGS.num_inference_steps,
                        help="steps the jam asks for (default: as many as keep up with playback, measured at "
                        "start-up, and never fewer than still denoise at the model's denoising)")
    parser.add_argument("--max-inference-steps", type=int, default=DEFAULT_SETTINGS.max_inference_steps,
                        help="refuse requests asking for more")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", default=DEFAULT_SETTINGS.warmup,
                        help="skip the start-up measurement (the jam then asks for --num-inference-steps, "
                        "else the model's default)")
