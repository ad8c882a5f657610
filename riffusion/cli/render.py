"""``riffusion render``: a jam session re-rendered offline (see :mod:`riffusion.sessions`)."""

from __future__ import annotations

import argparse
import sys
import typing as T

COMMANDS = ("render",)


def render(
    *,
    session: str,
    audio: str,
    num_inference_steps: T.Optional[int] = None,
    phase: T.Optional[str] = None,
    model: T.Optional[str] = None,
    device: str = "auto",
    skip_loops: bool = False,
    batch_size: int = 1,
) -> str:
    """Re-render the jam session in the JSON file ``session`` into ``audio``: the same clips, joined with
    the jam's crossfades. The session's own model and steps by default; ``num_inference_steps``, ``phase``
    and ``model`` re-render it at higher quality or with another model."""
    from riffusion.audio import write_audio
    from riffusion.cli.generate import _check_audio_output, _check_common, _load, _progress
    from riffusion.sessions import read_session, render_session

    parsed = read_session(session)
    _check_audio_output(audio)
    phase = _check_common(phase=phase or str(parsed.phase or "default"), num_inference_steps=num_inference_steps,
                          batch_size=batch_size)
    pipeline = _load(model or parsed.model, device, None)
    with _progress(len(parsed.clips)) as bar:
        rendered = render_session(parsed, pipeline, num_inference_steps=num_inference_steps, phase=phase,
                                  loops=not skip_loops, batch_size=batch_size, progress=bar.update)
    write_audio(audio, rendered.waveform, rendered.sample_rate)
    seconds = rendered.waveform.shape[-1] / rendered.sample_rate
    print(f"Wrote {audio}: {len(parsed.clips)} clips, {seconds:.1f} s with {pipeline.model_id}", file=sys.stderr)
    return audio


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="re-render a jam session (its session file) offline, at higher quality or with another model",
        description="Make every clip of a jam session again (the Share panel's session file) and join them as "
        "the jam played them: gapless, with its crossfades and the bars it looped while a clip was late. "
        "The session's model, steps and phase method give the audio as heard.",
    )
    p.add_argument("--session", required=True, help="the session file (JSON, schema riffusion-session)")
    p.add_argument("--audio", required=True, help="output audio file (wav, flac, ogg, mp3), written atomically")
    p.add_argument("--num-inference-steps", type=int, help="steps for every clip instead of the recorded ones")
    p.add_argument("--phase", help="phase reconstruction, e.g. pghi, mel-griffin-lim:96; default: the session's")
    p.add_argument("--model", help="another model (name, folder or hub id); default: the session's")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps (default: auto)")
    p.add_argument("--skip-loops", action="store_true",
                   help="join the clips directly, without the bars the jam looped while a clip was late")
    p.add_argument("--batch-size", type=int, default=1,
                   help="clips per model batch (1, the default, gives exactly the clips the jam heard)")
    p.set_defaults(_command=render)
