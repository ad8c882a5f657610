"""``riffusion serve``: the inference server and the web app."""

from __future__ import annotations

import argparse
import os
import typing as T

COMMANDS = ("serve",)


def serve(
    *,
    model: T.Optional[str] = None,
    device: str = "auto",
    host: str = "127.0.0.1",
    port: int = 3013,
    num_inference_steps: T.Optional[int] = None,
    phase: str = "default",
    queue_size: int = 32,
    max_batch_size: int = 4,
    request_timeout_s: float = 120.0,
    max_inference_steps: int = 150,
    cache_size: int = 64,
    cache_mb: float = 48.0,
    cors_origin: T.Sequence[str] = (),
    log_prompts: bool = False,
    open_browser: bool = False,
) -> None:
    """Start the server (original ``/run_inference/``, native ``/api/v1``, the jam at ``/``)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from riffusion.generation import check_phase
    from riffusion.server import ServerSettings
    from riffusion.server import serve as run_server

    check_phase(phase)
    if cache_mb < 0:
        raise ValueError(f"--cache-mb must be >= 0, got {cache_mb}")
    settings = ServerSettings(
        model=model, device=device, host=host, port=port, num_inference_steps=num_inference_steps, phase=phase,
        queue_size=queue_size, max_batch_size=max_batch_size, request_timeout_s=request_timeout_s,
        max_inference_steps=max_inference_steps, cors_origins=tuple(cors_origin or ()), log_prompts=log_prompts,
        cache_size=cache_size, cache_max_bytes=int(cache_mb * 2**20),
    )
    if model is not None:
        # Fail before binding the port when the model is not available here.
        from riffusion.loading import TINY_RANDOM, resolve_model

        if model != TINY_RANDOM:
            resolve_model(model)
    run_server(settings, open_browser=open_browser)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the inference server and the jam web app")
    p.add_argument("--model", default=None, help="model id, folder or file (default: the shipped model)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    p.add_argument("--port", type=int, default=3013)
    p.add_argument("--num-inference-steps", type=int, default=None,
                   help="steps the jam asks for (default: as many as keep up with playback, measured)")
    p.add_argument("--phase", default="default",
                   help="phase reconstruction method, NAME or NAME:ITERATIONS (see riffusion image-to-audio --help)")
    p.add_argument("--queue-size", type=int, default=32, help="requests that may wait; more get 503")
    p.add_argument("--max-batch-size", type=int, default=4, help="requests denoised together")
    p.add_argument("--request-timeout-s", type=float, default=120.0, help="seconds before a clip request gives up")
    p.add_argument("--max-inference-steps", type=int, default=150, help="refuse requests asking for more")
    p.add_argument("--cache-size", type=int, default=64, help="identical requests answered from memory (0: off)")
    p.add_argument("--cache-mb", type=float, default=48.0, help="and at most this many MiB of them")
    p.add_argument("--cors-origin", action="append", default=[], help="allow this origin (repeatable)")
    p.add_argument("--log-prompts", action="store_true", help="log prompt text (off by default)")
    p.add_argument("--open-browser", action="store_true", help="open the jam in a browser once ready")
    p.set_defaults(_command=serve)
