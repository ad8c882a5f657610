"""The continuation command: ``riffusion continue --input song.wav --prompt "..." --seconds 60 --audio out.wav``.

Arguments and the output path are checked before the model loads; the prompt (or ``--schedule``) is parsed
once into a :class:`riffusion.continuation.PromptSchedule`; the output is written atomically.
"""

from __future__ import annotations

import argparse
import sys
import typing as T
from pathlib import Path

from riffusion.cli.generate import _check_audio_output, _check_common, _load, _model_flags, _progress

COMMANDS = ("continue_audio",)


def continue_audio(
    *,
    input: str,
    audio: str,
    seconds: float,
    prompt: T.Optional[str] = None,
    schedule: T.Optional[str] = None,
    negative_prompt: T.Optional[str] = None,
    seed: int = 42,
    num_inference_steps: T.Optional[int] = None,
    guidance: T.Optional[float] = None,
    denoising: T.Optional[float] = None,
    context: float = 0.5,
    crossfade_s: T.Optional[float] = None,
    bpm: T.Optional[float] = None,
    metre: T.Optional[str] = None,
    scheduler: T.Optional[str] = None,
    model: T.Optional[str] = None,
    model_config: T.Optional[str] = None,
    device: str = "auto",
    phase: str = "default",
) -> list[str]:
    """Write ``--input`` followed by ``--seconds`` of new music that carries on from its end (its tempo,
    key and instruments), under ``--prompt`` or a ``--schedule`` of prompts ("0:jazz piano,20:rock band":
    seconds of the continuation), at the input's sample rate and channels."""
    from riffusion.audio import read_audio, write_audio
    from riffusion.continuation import DEFAULT_CROSSFADE_S, DEFAULT_DENOISING, PromptSchedule
    from riffusion.continuation import continue_audio as carry_on
    from riffusion.rhythm import parse_metre

    if (prompt is None) == (schedule is None):
        raise ValueError("give --prompt or --schedule (one of them)")
    plan = PromptSchedule.parse(schedule) if schedule is not None else PromptSchedule.constant(prompt)
    if not 0 < seconds <= 600:
        raise ValueError(f"--seconds must be in (0, 600], got {seconds:g}")
    if not Path(input).is_file():
        raise FileNotFoundError(f"--input file not found: {input!r}")
    _check_audio_output(audio)
    denoising = DEFAULT_DENOISING if denoising is None else denoising
    if not 0.0 < denoising <= 1.0:
        raise ValueError(f"--denoising must be in (0, 1] for a continuation, got {denoising:g}")
    phase = _check_common(scheduler=scheduler, phase=phase, num_inference_steps=num_inference_steps,
                          denoising=denoising)
    if not 0.0 < context < 1.0:
        raise ValueError(f"--context must be in (0, 1), got {context:g}")
    crossfade_s = DEFAULT_CROSSFADE_S if crossfade_s is None else crossfade_s
    if not 0.0 <= crossfade_s <= 1.0:
        raise ValueError(f"--crossfade-s must be in [0, 1], got {crossfade_s:g}")
    if metre is not None and bpm is None:
        raise ValueError("--metre needs --bpm (the input's tempo)")
    beats_per_bar = parse_metre(metre) if metre is not None else None
    waveform, rate = read_audio(input)
    pipeline = _load(model, device, scheduler, model_config)
    pipeline.show_progress = False
    width = pipeline.image_size[0]
    keep = width * context
    per_clip = pipeline.spectrogram_params.duration_s(max(1, int(width - keep)))
    with _progress(max(1, int(seconds // max(per_clip, 1e-3)) + 1)) as bar:
        result = carry_on(pipeline, waveform, rate, prompt=plan, seconds=seconds, seed=seed,
                          negative_prompt=negative_prompt, num_inference_steps=num_inference_steps, guidance=guidance,
                          denoising=denoising, context=context, crossfade_s=crossfade_s, bpm=bpm,
                          beats_per_bar=beats_per_bar, phase=phase, progress=bar.update)
    write_audio(audio, result.waveform, result.sample_rate)
    tempo = f", at {result.grid.bpm:g} bpm" if result.grid is not None else ""
    print(f"Wrote {audio} ({result.duration_s:.2f} s: {waveform.shape[-1] / rate:.2f} s of input and "
          f"{len(result.junctions_s)} new clips{tempo})", file=sys.stderr)
    print(audio)
    return [audio]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("continue", help="an audio file followed by new music that carries on from its end")
    p.add_argument("--input", required=True, help="the audio to continue (WAV, FLAC, OGG, MP3; any length)")
    p.add_argument("--audio", required=True, help="output audio: the input, then the continuation")
    p.add_argument("--seconds", type=float, required=True, help="seconds of music to add (at most 600)")
    p.add_argument("--prompt", default=None, help="what the continuation sounds like")
    p.add_argument("--schedule", default=None,
                   help='prompts by seconds of the continuation, e.g. "0:jazz piano,20:rock band" (instead of --prompt)')
    p.add_argument("--negative-prompt", default=None, help="what to steer away from")
    p.add_argument("--seed", type=int, default=42, help="noise seed of the first new clip (then seed+1, ...)")
    p.add_argument("--num-inference-steps", type=int, default=None, help="scheduler steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the model's)")
    p.add_argument("--denoising", type=float, default=None,
                   help="how far each new part departs from the context's repeated last bars: 1.0 draws it from "
                        "noise (default: 0.9)")
    p.add_argument("--context", type=float, default=0.5,
                   help="share of each clip kept as context from the audio before it (default: 0.5)")
    p.add_argument("--crossfade-s", type=float, default=None, help="crossfade at each junction in seconds (default: 0.2)")
    p.add_argument("--bpm", type=float, default=None, help="the input's tempo (default: measured)")
    p.add_argument("--metre", default=None, help="with --bpm: the input's metre, 4/4, 3/4, 6/8, ...")
    _model_flags(p, batch=False)  # clips are made one after another: each is the next one's context
    p.set_defaults(_command=continue_audio)
