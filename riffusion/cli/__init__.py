"""The ``riffusion`` command line: ``riffusion <command> ...`` or ``python -m riffusion.cli <command> ...``.

Each command lives in the submodule of its topic and is a keyword-only function whose keyword names are
the command's ``--long-options`` with underscores (``audio_to_image(audio=..., image=...)``), so scripts
written for the original package can call them directly. This module only assembles the parser.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Sequence

# Topic modules, in the order their commands appear in ``--help``. Each defines ``register(subparsers)``
# and ``COMMANDS`` (the names of its command functions).
_TOPICS = ("convert", "generate", "batch", "continuation", "render", "serve", "evaluate", "data", "train")


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2, no traceback."""


def _topic_modules():
    for topic in _TOPICS:
        try:
            yield importlib.import_module(f"riffusion.cli.{topic}")
        except ModuleNotFoundError as exc:  # a topic not written yet
            if exc.name != f"riffusion.cli.{topic}":
                raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riffusion",
        description="Riffusion: real-time music generation with diffusion on spectrogram images.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _topic_modules():
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    command = args.pop("_command")
    name = args.pop("command")
    kwargs: dict[str, Any] = {k: v for k, v in args.items() if not k.startswith("_")}
    try:
        command(**kwargs)
    except KeyboardInterrupt:
        print(f"riffusion {name}: interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, OSError, LookupError) as exc:
        # Bad input, missing files, unknown names: one clear line, no traceback.
        message = str(exc) or type(exc).__name__
        print(f"riffusion {name}: error: {message}", file=sys.stderr)
        return 2
    return 0


def __getattr__(name: str):
    # ``from riffusion.cli import audio_to_image`` without importing every topic up front.
    for module in _topic_modules():
        if name in getattr(module, "COMMANDS", ()):
            return getattr(module, name)
    raise AttributeError(f"module 'riffusion.cli' has no attribute {name!r}")
