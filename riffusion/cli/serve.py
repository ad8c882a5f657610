"""``riffusion serve``: the inference server and the web app.

Every default is :class:`~riffusion.server.settings.ServerSettings`'s; this module only names the options.
"""

from __future__ import annotations

import argparse
import os
import typing as T

from riffusion.server.settings import DEFAULT_SETTINGS as _DEFAULTS
from riffusion.server.settings import ServerSettings, add_step_arguments

COMMANDS = ("serve",)

_MIB = 2**20


def serve(
    *,
    model: T.Optional[str] = _DEFAULTS.model,
    device: str = _DEFAULTS.device,
    host: str = _DEFAULTS.host,
    port: int = _DEFAULTS.port,
    num_inference_steps: T.Optional[int] = _DEFAULTS.num_inference_steps,
    phase: str = _DEFAULTS.phase,
    queue_size: int = _DEFAULTS.queue_size,
    max_batch_size: int = _DEFAULTS.max_batch_size,
    request_timeout_s: float = _DEFAULTS.request_timeout_s,
    max_inference_steps: int = _DEFAULTS.max_inference_steps,
    cache_size: int = _DEFAULTS.cache_size,
    cache_mb: float = _DEFAULTS.cache_max_bytes / _MIB,
    cors_origin: T.Sequence[str] = _DEFAULTS.cors_origins,
    log_prompts: bool = _DEFAULTS.log_prompts,
    warmup: bool = _DEFAULTS.warmup,
    max_render_clips: int = _DEFAULTS.max_render_clips,
    max_render_s: float = _DEFAULTS.max_render_s,
    open_browser: bool = False,
    backend: str = "local",
    replicas: int = 1,
) -> None:
    """Start the server (original ``/run_inference/``, native ``/api/v1``, the jam at ``/``): in this
    process (``backend="local"``), or on Ray Serve with ``replicas`` model replicas (``backend="ray"``)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from riffusion.server.run import serve as run_server

    if cache_mb < 0:
        raise ValueError(f"--cache-mb must be >= 0, got {cache_mb}")
    settings = ServerSettings(
        model=model, device=device, host=host, port=port, num_inference_steps=num_inference_steps, phase=phase,
        queue_size=queue_size, max_batch_size=max_batch_size, request_timeout_s=request_timeout_s,
        max_inference_steps=max_inference_steps, cors_origins=tuple(cors_origin or ()), log_prompts=log_prompts,
        cache_size=cache_size, cache_max_bytes=int(cache_mb * _MIB), warmup=warmup,
        max_render_clips=max_render_clips, max_render_s=max_render_s,
    )
    if backend != "ray" and replicas != 1:
        raise ValueError(f"--replicas {replicas} needs --backend ray (the single-process server holds one model)")
    if backend == "ray":
        from riffusion.cli import CliError
        from riffusion.server.ray.run import RayMissing, serve as run_on_ray

        try:
            run_on_ray(settings, replicas=replicas, open_browser=open_browser)
        except RayMissing as exc:  # Ray is an optional extra
            raise CliError(str(exc)) from None
    else:
        run_server(settings, open_browser=open_browser)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the inference server and the jam web app")
    p.add_argument("--model", default=_DEFAULTS.model, help="model id, folder or file (default: the shipped model)")
    p.add_argument("--device", default=_DEFAULTS.device, help="auto, cpu, cuda[:N] or mps")
    p.add_argument("--host", default=_DEFAULTS.host, help="address to bind (loopback by default)")
    p.add_argument("--port", type=int, default=_DEFAULTS.port)
    add_step_arguments(p)
    p.add_argument("--phase", default=_DEFAULTS.phase,
                   help="phase reconstruction method, NAME or NAME:ITERATIONS (see riffusion image-to-audio --help)")
    p.add_argument("--queue-size", type=int, default=_DEFAULTS.queue_size, help="requests that may wait; more get 503")
    p.add_argument("--max-batch-size", type=int, default=_DEFAULTS.max_batch_size, help="requests denoised together")
    p.add_argument("--request-timeout-s", type=float, default=_DEFAULTS.request_timeout_s,
                   help="seconds before a clip request gives up")
    p.add_argument("--cache-size", type=int, default=_DEFAULTS.cache_size,
                   help="identical requests answered from memory (0: off)")
    p.add_argument("--cache-mb", type=float, default=_DEFAULTS.cache_max_bytes / _MIB,
                   help="and at most this many MiB of them")
    p.add_argument("--cors-origin", action="append", default=list(_DEFAULTS.cors_origins),
                   help="allow this origin (repeatable)")
    p.add_argument("--log-prompts", action="store_true", default=_DEFAULTS.log_prompts,
                   help="log prompt text (off by default)")
    p.add_argument("--max-render-clips", type=int, default=_DEFAULTS.max_render_clips,
                   help="most clips a session render (POST /api/v1/render) may have")
    p.add_argument("--max-render-s", type=float, default=_DEFAULTS.max_render_s,
                   help="most seconds of audio a session render may make")
    p.add_argument("--open-browser", action="store_true", help="open the jam in a browser once ready")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: one process (default); ray: model replicas on Ray Serve (docs/ray.md)")
    p.add_argument("--replicas", type=int, default=1, help="model replicas with --backend ray")
    p.set_defaults(_command=serve)
