"""``python -m riffusion.server --checkpoint ... --device ... --host ... --port ...`` (the original's entry)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported: idle threads sleep

import argparse  # noqa: E402
import sys  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m riffusion.server", description="Riffusion inference server")
    parser.add_argument("--checkpoint", default=None, help="model id, folder or file (default: the shipped model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3013)
    args = parser.parse_args(argv)
    from riffusion.cli.serve import serve

    try:
        serve(model=args.checkpoint, device=args.device, host=args.host, port=args.port)
    except (ValueError, OSError, LookupError) as exc:
        print(f"riffusion.server: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
