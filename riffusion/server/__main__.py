"""``python -m riffusion.server --checkpoint ... --device ... --host ... --port ...`` (the original's entry).

``riffusion serve`` takes every setting; this entry takes the original's four and the same warm-up and
step options, with the defaults of :class:`~riffusion.server.settings.ServerSettings`.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: idle threads sleep

import argparse  # noqa: E402
import sys  # noqa: E402

from riffusion.server.settings import DEFAULT_SETTINGS, ServerSettings, add_step_arguments  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m riffusion.server", description="Riffusion inference server")
    parser.add_argument("--checkpoint", default=DEFAULT_SETTINGS.model,
                        help="model id, folder or file (default: the shipped model)")
    parser.add_argument("--device", default=DEFAULT_SETTINGS.device, help="auto, cpu, cuda[:N] or mps")
    parser.add_argument("--host", default=DEFAULT_SETTINGS.host, help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=DEFAULT_SETTINGS.port)
    add_step_arguments(parser)
    return parser


def main(argv=None) -> int:
    """Serve until interrupted; 2 with a one-line message for settings that cannot work."""
    args = build_parser().parse_args(argv)
    from riffusion.server.run import serve

    try:
        serve(ServerSettings(model=args.checkpoint, device=args.device, host=args.host, port=args.port,
                             num_inference_steps=args.num_inference_steps,
                             max_inference_steps=args.max_inference_steps, warmup=args.warmup))
    except (ValueError, OSError, LookupError) as exc:
        print(f"riffusion.server: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
