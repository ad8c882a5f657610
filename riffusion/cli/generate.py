"""Generation commands: text-to-audio, interpolate, audio-to-audio, text-to-audio-batch, download.

Every command checks its arguments and output paths before loading a model, shows a progress bar on a
terminal, and writes each output file atomically (temporary file renamed when complete).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing as T
from pathlib import Path

from riffusion.defaults import GENERATION, check_generation

COMMANDS = ("text_to_audio", "interpolate", "audio_to_audio")

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# --- argument checks (before any model is loaded) -------------------------------------------------------------


def _check_audio_output(path: str) -> None:
    from riffusion.audio import audio_format

    audio_format(path)  # ValueError for an unsupported extension
    _check_parent(path)


def _check_image_output(path: T.Optional[str]) -> None:
    if path is None:
        return
    if Path(path).suffix.lower() not in _IMAGE_SUFFIXES:
        raise ValueError(f"unsupported image extension for {path!r}; expected one of {', '.join(_IMAGE_SUFFIXES)}")
    _check_parent(path)


def _check_parent(path: str) -> None:
    parent = Path(path).parent
    if not parent.is_dir():
        raise FileNotFoundError(f"output directory does not exist: {str(parent)!r}")


_FLAG_LABELS = {"num_inference_steps": "--num-inference-steps", "denoising": "--denoising", "guidance": "--guidance"}


def _check_common(*, width: T.Optional[int] = None, scheduler: T.Optional[str] = None, phase: str = "default",
                  num_inference_steps: T.Optional[int] = None, denoising: T.Optional[float] = None,
                  batch_size: int = 1):
    """Fail fast on bad options; returns the phase method parsed once (the typed value passed on)."""
    from riffusion.generation import check_phase
    from riffusion.schedulers import canonical_scheduler_name

    if width is not None and (width < 8 or width % 8):
        raise ValueError(f"--width must be a positive multiple of 8 (image columns), got {width}")
    if scheduler is not None:
        canonical_scheduler_name(scheduler)
    parsed_phase = check_phase(phase)
    check_generation(num_inference_steps=num_inference_steps, denoising=denoising, labels=_FLAG_LABELS)
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    return parsed_phase


def _check_seed_images(seed_image: str, mask: T.Optional[str]) -> None:
    """Fail fast on ids that no model could know (paths); unknown names are checked after loading,
    because a model folder may bring its own seed images."""
    from riffusion.seed_images import _check_id

    _check_id(seed_image, "seed image")
    if mask is not None:
        _check_id(mask, "mask")


def _load(model: T.Optional[str], device: str, scheduler: T.Optional[str], model_config: T.Optional[str] = None):
    from riffusion.loading import load_pipeline

    pipeline = load_pipeline(model, device=device, scheduler=scheduler, config=model_config)
    pipeline.show_progress = True  # a step bar under the clip bar (terminals only)
    return pipeline


def _progress(total: int, unit: str = "clip"):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, file=sys.stderr, disable=None, dynamic_ncols=True)


def _steps(pipeline, num_inference_steps: T.Optional[int]) -> int:
    return int(num_inference_steps or pipeline.default_num_inference_steps)


def _rhythm_flags(bpm: T.Optional[float], metre: T.Optional[str]):
    """The beat grid of ``--bpm``/``--metre`` (a clip starting on a downbeat), or None without ``--bpm``."""
    from riffusion.rhythm import BeatGrid, parse_metre

    if bpm is None:
        if metre is not None:
            raise ValueError("--metre needs --bpm (the tempo of its beats)")
        return None
    beats = parse_metre(metre) if metre is not None else 4
    try:
        return BeatGrid(bpm=float(bpm), beats_per_bar=beats, offset_s=0.0)
    except ValueError as error:
        raise ValueError(f"--bpm: {error}") from None


def _check_seed_audio(seed_audio: T.Optional[str], seed_image: T.Optional[str]) -> None:
    """``--seed-audio`` replaces ``--seed-image``: one of them, and a file that exists."""
    if seed_audio is None:
        return
    if seed_image is not None:
        raise ValueError("give --seed-image or --seed-audio, not both (the audio file becomes the seed loop)")
    if not Path(seed_audio).is_file():
        raise FileNotFoundError(f"--seed-audio file not found: {seed_audio!r}")


def _seed_audio_loop(pipeline, path: str, bpm: T.Optional[float], metre: T.Optional[str]):
    """The seed loop of ``--seed-audio`` for ``pipeline`` (:func:`riffusion.loops.seed_loop_from_audio`);
    ``--bpm``/``--metre`` are the file's tempo and metre."""
    from riffusion.audio import read_audio
    from riffusion.loops import LoopError, seed_loop_from_audio
    from riffusion.rhythm import parse_metre

    rate = pipeline.spectrogram_params.sample_rate
    waveform, _ = read_audio(path, sample_rate=rate)
    try:
        loop = seed_loop_from_audio(waveform, rate, params=pipeline.spectrogram_params, width=pipeline.image_size[0],
                                    bpm=bpm, beats_per_bar=parse_metre(metre) if metre is not None else 4)
    except LoopError as error:
        hint = " with --bpm" if "bpm" in str(error) else ""
        raise ValueError(f"--seed-audio {path}: {error}{hint}") from None
    print(f"Seed loop from {path}: {loop.bars} bars of {loop.beats_per_bar} at {loop.source_bpm:g} bpm from "
          f"{loop.start_s:.2f} s, fitted to {loop.tempo_bpm:g} bpm", file=sys.stderr)
    return loop


def _check_rhythm_model(pipeline, rhythm) -> None:
    if rhythm is not None and not pipeline.has_rhythm_input:
        raise ValueError(f"--bpm needs a model with a rhythm input (such as riffusion-small-v2); "
                         f"{pipeline.model_id} has none (give it a loop with --seed-image instead)")


def _mix_flags(prompt: str, mix: T.Optional[T.Sequence[str]]) -> T.Optional[tuple[tuple[str, float], ...]]:
    """``--prompt`` (weight 1) and each ``--mix PROMPT:WEIGHT`` as a validated mix; None without ``--mix``.
    The weight follows the last colon, so A1111 weights like ``(piano:1.3)`` may appear in the prompt."""
    import math

    from riffusion.prompts import MAX_MIX_PROMPTS, check_prompt_mix

    if not mix:
        return None
    if len(mix) > MAX_MIX_PROMPTS - 1:
        raise ValueError(f"--mix takes at most {MAX_MIX_PROMPTS - 1} prompts ({MAX_MIX_PROMPTS} with --prompt), "
                         f"got {len(mix)}")
    if not prompt.strip():
        raise ValueError("--prompt must not be blank when prompts are mixed in with --mix")
    entries: list[tuple[str, float]] = [(prompt, 1.0)]
    for value in mix:
        text, colon, weight = value.rpartition(":")
        try:
            number = float(weight) if colon else None
        except ValueError:
            number = None
        if number is None or not text.strip():
            raise ValueError(f"--mix {value!r}: expected PROMPT:WEIGHT, e.g. --mix \"rain on a roof:0.4\"")
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"--mix {value!r}: the weight must be a finite number >= 0, got {weight.strip()}")
        entries.append((text, number))
    return check_prompt_mix(entries, field="--mix")


def _numbered(path: str, index: int, count: int) -> str:
    """``out.wav`` for a single output, ``out_000.wav``, ``out_001.wav`` ... for several."""
    if count == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}_{index:03d}{p.suffix}"))


# --- commands -------------------------------------------------------------------------------------------------


def text_to_audio(
    *,
    prompt: str,
    audio: str,
    image: T.Optional[str] = None,
    mix: T.Optional[T.Sequence[str]] = None,
    negative_prompt: T.Optional[str] = None,
    seed: int = 42,
    num_clips: int = 1,
    num_inference_steps: T.Optional[int] = None,
    guidance: T.Optional[float] = None,
    denoising: T.Optional[float] = None,
    scheduler: T.Optional[str] = None,
    width: T.Optional[int] = None,
    seed_image: T.Optional[str] = None,
    seed_audio: T.Optional[str] = None,
    mask: T.Optional[str] = None,
    bpm: T.Optional[float] = None,
    metre: T.Optional[str] = None,
    model: T.Optional[str] = None,
    model_config: T.Optional[str] = None,
    device: str = "auto",
    phase: str = "default",
    batch_size: int = 4,
) -> list[str]:
    """Generate clips from a prompt: seeds ``seed``, ``seed + 1``, ... (``--num-clips``), one file each.

    From noise by default, so the prompt alone decides the music; with ``--seed-image`` from that loop (a
    rhythm model at its default denoising takes only the loop's beat), with ``--bpm``/``--metre`` on that
    beat grid (rhythm models). ``--seed-audio`` makes the seed loop from an audio file (``--bpm``/``--metre``
    then give the file's tempo and metre, measured by default). Each ``--mix PROMPT:WEIGHT``
    blends another prompt into the conditioning (``--prompt`` has weight 1; weights are relative)."""
    from riffusion.datatypes import InferenceInput, PromptInput
    from riffusion.generation import generate_clips

    if num_clips < 1:
        raise ValueError(f"--num-clips must be at least 1, got {num_clips}")
    prompt_mix = _mix_flags(prompt, mix)
    _check_audio_output(audio)
    _check_image_output(image)
    phase = _check_common(width=width, scheduler=scheduler, phase=phase, num_inference_steps=num_inference_steps,
                          denoising=denoising, batch_size=batch_size)
    _check_seed_audio(seed_audio, seed_image)
    if seed_image is not None or mask is not None:
        _check_seed_images(seed_image or GENERATION.seed_image_id, mask)
    if mask is not None and seed_image is None and seed_audio is None:
        raise ValueError("--mask keeps parts of a seed image: give --seed-image too")
    if width is not None and seed_image is None and seed_audio is None:
        raise ValueError("--width makes a longer clip by repeating a seed loop: give --seed-image too")
    rhythm = _rhythm_flags(bpm, metre) if seed_audio is None else None  # with it, the file's tempo
    pipeline = _load(model, device, scheduler, model_config)
    steps = _steps(pipeline, num_inference_steps)
    loop = None
    if seed_audio is not None:
        loop = _seed_audio_loop(pipeline, seed_audio, bpm, metre)
        rhythm = loop.grid if pipeline.has_rhythm_input else None
    _check_rhythm_model(pipeline, rhythm)
    guidance = pipeline.default_guidance if guidance is None else guidance
    denoising = pipeline.default_denoising if denoising is None else denoising
    inputs = []
    for i in range(num_clips):
        end = PromptInput(prompt=prompt, seed=seed + i, negative_prompt=negative_prompt, denoising=denoising,
                          guidance=guidance, mix=prompt_mix)
        inputs.append(InferenceInput(start=end, end=end, alpha=0.0, num_inference_steps=steps,
                                     seed_image_id=seed_image, mask_image_id=mask, rhythm=rhythm))
    written = []
    with _progress(num_clips) as bar:
        for start in range(0, num_clips, batch_size):
            chunk = inputs[start : start + batch_size]
            clips = generate_clips(pipeline, chunk, phase=phase, width=width, batch_size=batch_size,
                                   seed_image=None if loop is None else loop.image)
            for offset, clip in enumerate(clips):
                index = start + offset
                audio_path = _numbered(audio, index, num_clips)
                clip.write_audio(audio_path)
                written.append(audio_path)
                if image is not None:
                    image_path = _numbered(image, index, num_clips)
                    clip.save_image(image_path)
                    written.append(image_path)
                bar.update(1)
                bar.write(f"Wrote {audio_path} ({clip.duration_s:.2f} s, seed {clip.inputs.start.seed})", file=sys.stderr)
    for path in written:
        print(path)
    return written


def interpolate(
    *,
    start_prompt: str,
    end_prompt: str,
    audio: str,
    start_seed: int = 42,
    end_seed: T.Optional[int] = None,
    negative_prompt: T.Optional[str] = None,
    num_clips: int = 5,
    num_inference_steps: T.Optional[int] = None,
    alpha_curve: str = "linear",
    guidance: T.Optional[float] = None,
    denoising: T.Optional[float] = None,
    seed_image: T.Optional[str] = None,
    seed_audio: T.Optional[str] = None,
    bpm: T.Optional[float] = None,
    metre: T.Optional[str] = None,
    mask: T.Optional[str] = None,
    image_dir: T.Optional[str] = None,
    crossfade_s: float = 0.01,
    scheduler: T.Optional[str] = None,
    model: T.Optional[str] = None,
    model_config: T.Optional[str] = None,
    device: str = "auto",
    phase: str = "default",
    batch_size: int = 4,
) -> list[str]:
    """Interpolate from the start prompt and seed to the end ones over ``--num-clips`` clips (alpha 0 to 1
    along ``--alpha-curve``), joined into one continuous audio file; images to ``--image-dir``. The seed loop
    is ``--seed-image`` (default og_beat), or ``--seed-audio``, an audio file made into one (its tempo and
    metre measured, or ``--bpm``/``--metre``)."""
    from riffusion.datatypes import PromptInput
    from riffusion.generation import ALPHA_CURVES, concatenate, generate_clips, interpolation_inputs

    if num_clips < 1:
        raise ValueError(f"--num-clips must be at least 1, got {num_clips}")
    if alpha_curve not in ALPHA_CURVES:
        raise ValueError(f"unknown --alpha-curve {alpha_curve!r}; expected one of {', '.join(ALPHA_CURVES)}")
    if crossfade_s < 0:
        raise ValueError(f"--crossfade-s must be >= 0, got {crossfade_s}")
    _check_audio_output(audio)
    if image_dir is not None and not Path(image_dir).is_dir():
        raise FileNotFoundError(f"--image-dir does not exist: {image_dir!r}")
    phase = _check_common(scheduler=scheduler, phase=phase, num_inference_steps=num_inference_steps,
                          denoising=denoising, batch_size=batch_size)
    _check_seed_audio(seed_audio, seed_image)
    if seed_audio is None and (bpm is not None or metre is not None):
        raise ValueError("--bpm and --metre give --seed-audio's tempo and metre: give --seed-audio too")
    seed_image = seed_image or GENERATION.seed_image_id
    _check_seed_images(seed_image, mask)
    pipeline = _load(model, device, scheduler, model_config)
    steps = _steps(pipeline, num_inference_steps)
    loop = None if seed_audio is None else _seed_audio_loop(pipeline, seed_audio, bpm, metre)
    guidance = pipeline.default_guidance if guidance is None else guidance
    denoising = pipeline.default_denoising if denoising is None else denoising
    end_seed = start_seed + 1 if end_seed is None else end_seed
    start = PromptInput(prompt=start_prompt, seed=start_seed, negative_prompt=negative_prompt, denoising=denoising,
                        guidance=guidance)
    end = PromptInput(prompt=end_prompt, seed=end_seed, negative_prompt=negative_prompt, denoising=denoising,
                      guidance=guidance)
    inputs = interpolation_inputs(start, end, num_clips=num_clips, num_inference_steps=steps, curve=alpha_curve,
                                  include_start=True, seed_image_id=seed_image, mask_image_id=mask)
    if loop is not None and pipeline.has_rhythm_input:
        inputs = [dataclasses.replace(item, rhythm=loop.grid) for item in inputs]
    with _progress(num_clips) as bar:
        clips = generate_clips(pipeline, inputs, phase=phase, batch_size=batch_size, progress=bar.update,
                               seed_image=None if loop is None else loop.image)
    written = []
    if image_dir is not None:
        for i, clip in enumerate(clips):
            path = os.path.join(image_dir, f"clip_{i:03d}_alpha_{clip.inputs.alpha:.3f}.png")
            clip.save_image(path)
            written.append(path)
    from riffusion.audio import write_audio

    rate = clips[0].sample_rate
    waveform = concatenate([clip.waveform for clip in clips], rate, crossfade_s=crossfade_s)
    write_audio(audio, waveform, rate)
    written.append(audio)
    print(f"Wrote {audio} ({waveform.shape[-1] / rate:.2f} s, {num_clips} clips)", file=sys.stderr)
    for path in written:
        print(path)
    return written


def audio_to_audio(
    *,
    input: str,
    prompt: str,
    audio: str,
    end_prompt: T.Optional[str] = None,
    negative_prompt: T.Optional[str] = None,
    seed: int = 42,
    end_seed: T.Optional[int] = None,
    denoising: float = 0.5,
    end_denoising: T.Optional[float] = None,
    guidance: T.Optional[float] = None,
    num_inference_steps: T.Optional[int] = None,
    overlap: float = 0.2,
    mask: T.Optional[str] = None,
    scheduler: T.Optional[str] = None,
    model: T.Optional[str] = None,
    model_config: T.Optional[str] = None,
    device: str = "auto",
    phase: str = "default",
    batch_size: int = 4,
) -> list[str]:
    """Transform a track of any length with a prompt (optionally moving to ``--end-prompt`` across it):
    overlapping clip windows, each img2img of its own spectrogram, crossfaded; output has the input's length
    and sample rate."""
    from riffusion.audio import read_audio, write_audio
    from riffusion.datatypes import PromptInput
    from riffusion.generation import audio_to_audio as transform

    _check_audio_output(audio)
    phase = _check_common(scheduler=scheduler, phase=phase, num_inference_steps=num_inference_steps,
                          denoising=denoising, batch_size=batch_size)
    if end_denoising is not None and not 0.0 <= end_denoising <= 1.0:
        raise ValueError(f"--end-denoising must be in [0, 1], got {end_denoising}")
    if not 0.0 <= overlap < 0.9:
        raise ValueError(f"--overlap must be in [0, 0.9), got {overlap}")
    if mask is not None:
        _check_seed_images(GENERATION.seed_image_id, mask)
    waveform, rate = read_audio(input)
    pipeline = _load(model, device, scheduler, model_config)
    steps = _steps(pipeline, num_inference_steps)
    guidance = pipeline.default_guidance if guidance is None else guidance
    start = PromptInput(prompt=prompt, seed=seed, negative_prompt=negative_prompt, denoising=denoising, guidance=guidance)
    end = PromptInput(
        prompt=end_prompt if end_prompt is not None else prompt, seed=seed if end_seed is None else end_seed,
        negative_prompt=negative_prompt, denoising=denoising if end_denoising is None else end_denoising,
        guidance=guidance,
    )
    width, _ = pipeline.image_size
    window = pipeline.spectrogram_params.num_samples(width) / pipeline.spectrogram_params.sample_rate
    hop = window * (1 - overlap)
    windows = max(1, int(-(-max(waveform.shape[-1] / rate - window, 0) // hop)) + 1)
    with _progress(windows, unit="window") as bar:
        out = transform(pipeline, waveform, rate, start=start, end=end, num_inference_steps=steps, overlap=overlap,
                        mask_image_id=mask, phase=phase, batch_size=batch_size, progress=bar.update)
    write_audio(audio, out, rate)
    print(f"Wrote {audio} ({out.shape[-1] / rate:.2f} s)", file=sys.stderr)
    print(audio)
    return [audio]


def _model_flags(p: argparse.ArgumentParser, *, batch: bool = True) -> None:
    from riffusion.loading import HUB_MODEL, TINY_RANDOM

    g = p.add_argument_group("model")
    g.add_argument("--model", default=None,
                   help=f"model id: the shipped model (default), {TINY_RANDOM!r}, {HUB_MODEL!r} or another hub id, "
                        "a diffusers folder, or a .safetensors/.ckpt file ($RIFFUSION_MODEL overrides the default)")
    g.add_argument("--model-config", default=None,
                   help="for an original single-file checkpoint: a diffusers folder or hub id with its configs")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps (default: auto)")
    g.add_argument("--scheduler", default=None,
                   help="sampler: unipc (default), dpm++, pndm, ddim, euler, euler-a, lms, heun, deis, dpm++-karras, dpm++-sde")
    g.add_argument("--phase", default="default",
                   help="phase reconstruction: default, pghi, griffin-lim, pghi+griffin-lim, mel-griffin-lim; "
                   "NAME:N sets an iterative one's iterations (e.g. mel-griffin-lim:96: better, ~4x slower)")
    if batch:
        g.add_argument("--batch-size", type=int, default=4, help="clips per UNet batch (default: 4)")


def _prompt_flags(p: argparse.ArgumentParser, *, denoising: T.Optional[float]) -> None:
    p.add_argument("--negative-prompt", default=None, help="what to steer away from")
    p.add_argument("--num-inference-steps", type=int, default=None,
                   help=f"scheduler steps, 1 to {GENERATION.max_inference_steps} (default: the model's, "
                        f"{GENERATION.num_inference_steps} with unipc); UNet calls = steps x denoising")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (default: the model's; riffusion-model-v1: "
                        f"{GENERATION.guidance:g})")
    p.add_argument("--denoising", type=float, default=denoising,
                   help="0 keeps the seed image, 1 ignores it (default: "
                        + ("the model's: riffusion-model-v1 and riffusion-small-v1 0.75, rhythm models 1.0, which "
                           "keeps only the loop's beat)" if denoising is None else f"{denoising})"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("text-to-audio", help="prompt -> audio clip(s) (and spectrogram images)")
    p.add_argument("--prompt", required=True, help="text prompt; A1111 weights like (piano:1.3) work, any length")
    p.add_argument("--mix", action="append", default=None, metavar="PROMPT:WEIGHT",
                   help="blend another prompt in, weighted relative to --prompt's 1 (repeat up to 3 times), "
                        'e.g. --mix "rain on a roof:0.4"')
    p.add_argument("--audio", required=True, help="output audio (.wav, .flac, .ogg, .mp3); numbered when --num-clips > 1")
    p.add_argument("--image", default=None, help="also write the spectrogram image (.png or .jpg)")
    p.add_argument("--seed", type=int, default=42, help="noise seed (default: 42)")
    p.add_argument("--num-clips", type=int, default=1, help="clips at seeds seed, seed+1, ... (default: 1)")
    _prompt_flags(p, denoising=None)
    p.add_argument("--width", type=int, default=None,
                   help="with --seed-image: image columns, a multiple of 8 (default: the model's; riffusion-model-v1: "
                        "512 = 5.11 s); wider repeats the seed loop: longer clips")
    p.add_argument("--seed-image", default=None,
                   help="start from this seed loop (an id such as og_beat or waltz); default: none, the clip is made "
                        "from the prompt alone")
    p.add_argument("--seed-audio", default=None,
                   help="start from a loop made of this audio file (WAV, FLAC, OGG, MP3): whole bars at its tempo, "
                        "fitted to the clip (instead of --seed-image)")
    p.add_argument("--mask", default=None, help="mask id (white = repaint, black = keep the seed image)")
    p.add_argument("--bpm", type=float, default=None,
                   help="rhythm models: the tempo of the clip's beat grid (the clip starts on a downbeat); with "
                        "--seed-audio: the file's tempo (default: measured)")
    p.add_argument("--metre", default=None, help="rhythm models, with --bpm: 4/4 (default), 3/4, 6/8, ...")
    _model_flags(p)
    p.set_defaults(_command=text_to_audio)

    p = subparsers.add_parser("interpolate", help="start prompt/seed -> end prompt/seed as one continuous track")
    p.add_argument("--start-prompt", required=True)
    p.add_argument("--end-prompt", required=True)
    p.add_argument("--start-seed", type=int, default=42)
    p.add_argument("--end-seed", type=int, default=None, help="default: start seed + 1")
    p.add_argument("--num-clips", type=int, default=5, help="clips from alpha 0 to 1 (default: 5)")
    p.add_argument("--alpha-curve", default="linear", help="linear or ease (slow at both ends)")
    _prompt_flags(p, denoising=None)
    p.add_argument("--seed-image", default=None, help=f"seed loop id (default: {GENERATION.seed_image_id})")
    p.add_argument("--seed-audio", default=None,
                   help="a loop made of this audio file (WAV, FLAC, OGG, MP3) instead of --seed-image")
    p.add_argument("--bpm", type=float, default=None, help="with --seed-audio: the file's tempo (default: measured)")
    p.add_argument("--metre", default=None, help="with --seed-audio: the file's metre, 4/4 (default), 3/4, 6/8, ...")
    p.add_argument("--mask", default=None)
    p.add_argument("--audio", required=True, help="output audio file (all clips joined)")
    p.add_argument("--image-dir", default=None, help="write each clip's spectrogram image here")
    p.add_argument("--crossfade-s", type=float, default=0.01, help="equal-power crossfade at each join (s)")
    _model_flags(p)
    p.set_defaults(_command=interpolate)

    p = subparsers.add_parser("audio-to-audio", help="transform a track of any length with a prompt")
    p.add_argument("--input", required=True, help="input audio file (any length)")
    p.add_argument("--prompt", required=True, help="prompt at the start of the track (and throughout)")
    p.add_argument("--end-prompt", default=None, help="prompt at the end of the track (interpolated across it)")
    p.add_argument("--audio", required=True, help="output audio file (same length as the input)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--end-seed", type=int, default=None)
    _prompt_flags(p, denoising=0.5)
    p.add_argument("--end-denoising", type=float, default=None, help="denoising at the end of the track")
    p.add_argument("--overlap", type=float, default=0.2, help="fraction of each window crossfaded with the next")
    p.add_argument("--mask", default=None)
    _model_flags(p)
    p.set_defaults(_command=audio_to_audio)
