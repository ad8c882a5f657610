"""Generation commands over many prompts or none: ``text-to-audio-batch`` (a JSON file of prompts) and
``download`` (a hub model into the local cache)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import typing as T
from pathlib import Path

from riffusion.cli.generate import _check_common, _check_seed_images, _load, _model_flags, _progress, _steps
from riffusion.defaults import GENERATION

COMMANDS = ("text_to_audio_batch", "download")


_BATCH_PARAMS = {
    "seed": int, "negative_prompt": (str, type(None)), "num_inference_steps": int, "guidance": (int, float),
    "denoising": (int, float), "seed_image_id": str, "mask_image_id": (str, type(None)), "width": int,
}
_BATCH_ALIASES = {"seed_image": "seed_image_id", "mask": "mask_image_id", "mask_image": "mask_image_id",
                  "steps": "num_inference_steps"}


def _batch_entries(data: T.Any, source: str) -> list[dict[str, T.Any]]:
    """Validate a batch file: ``{"params": {...}, "entries": [{"prompt": ..., ...}]}`` or a list of entries."""
    if isinstance(data, list):
        defaults, entries = {}, data
    elif isinstance(data, dict):
        unknown = sorted(set(data) - {"params", "defaults", "entries", "jobs"})
        if unknown:
            raise ValueError(f"{source}: unknown top-level keys {unknown}; expected 'params' and 'entries'")
        defaults = data.get("params", data.get("defaults", {}))
        entries = data.get("entries", data.get("jobs"))
    else:
        raise ValueError(f"{source}: expected a JSON object with 'entries' or a list of entries")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{source}: 'entries' must be a non-empty list of objects with a 'prompt'")

    def normalise(values: T.Any, where: str, *, allow_prompt: bool) -> dict[str, T.Any]:
        if not isinstance(values, dict):
            raise ValueError(f"{source}: {where} must be an object, got {type(values).__name__}")
        out = {}
        for key, value in values.items():
            key = _BATCH_ALIASES.get(key, key)
            if key in ("prompt", "name") and allow_prompt:
                if not isinstance(value, str) or (key == "prompt" and not value.strip()):
                    raise ValueError(f"{source}: {where}.{key} must be a non-empty string, got {value!r}")
            elif key in _BATCH_PARAMS:
                if not isinstance(value, _BATCH_PARAMS[key]) or isinstance(value, bool):
                    raise ValueError(f"{source}: {where}.{key} has the wrong type: {value!r}")
            else:
                allowed = sorted([*_BATCH_PARAMS, *(("prompt", "name") if allow_prompt else ())])
                raise ValueError(f"{source}: unknown key {key!r} in {where}; expected some of {allowed}")
            out[key] = value
        return out

    defaults = normalise(defaults, "params", allow_prompt=False)
    rows = []
    for i, entry in enumerate(entries):
        row = {**defaults, **normalise(entry, f"entries[{i}]", allow_prompt=True)}
        if "prompt" not in row:
            raise ValueError(f"{source}: entries[{i}] has no 'prompt'")
        rows.append(row)
    return rows


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "clip"


def text_to_audio_batch(
    *,
    json_file: str,
    output_dir: str,
    extension: str = "wav",
    images: bool = False,
    scheduler: T.Optional[str] = None,
    model: T.Optional[str] = None,
    model_config: T.Optional[str] = None,
    device: str = "auto",
    phase: str = "default",
    batch_size: int = 4,
) -> list[str]:
    """Generate every entry of a JSON file (``{"params": {...defaults}, "entries": [{"prompt": ..., "seed":
    ...}, ...]}``) into ``--output-dir`` as ``<index>_<prompt>_seed<seed>.<ext>`` (or the entry's "name")."""
    from riffusion.audio import audio_format
    from riffusion.datatypes import InferenceInput, PromptInput
    from riffusion.generation import generate_clips

    audio_format(f"x.{extension}")
    if not Path(output_dir).is_dir():
        raise FileNotFoundError(f"--output-dir does not exist: {output_dir!r}")
    try:
        data = json.loads(Path(json_file).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{json_file}: not valid JSON ({exc})") from exc
    rows = _batch_entries(data, json_file)
    phase = _check_common(scheduler=scheduler, phase=phase, batch_size=batch_size)
    for row in rows:
        _check_common(width=row.get("width"), num_inference_steps=row.get("num_inference_steps"),
                      denoising=row.get("denoising"))
        _check_seed_images(row.get("seed_image_id", GENERATION.seed_image_id), row.get("mask_image_id"))
    pipeline = _load(model, device, scheduler, model_config)
    jobs = []
    for i, row in enumerate(rows):
        prompt_input = PromptInput(
            prompt=row["prompt"], seed=int(row.get("seed", 42)), negative_prompt=row.get("negative_prompt"),
            denoising=float(row.get("denoising", pipeline.default_denoising)),
            guidance=float(row.get("guidance", pipeline.default_guidance)),
        )
        inputs = InferenceInput(
            start=prompt_input, end=prompt_input, alpha=0.0,
            num_inference_steps=int(row.get("num_inference_steps") or _steps(pipeline, None)),
            seed_image_id=row.get("seed_image_id", GENERATION.seed_image_id), mask_image_id=row.get("mask_image_id"),
        )
        name = row.get("name") or f"{i:03d}_{_slug(row['prompt'])}_seed{prompt_input.seed}"
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"{json_file}: entries[{i}].name {name!r} must be a plain file name")
        jobs.append((inputs, row.get("width"), name))
    written = []
    with _progress(len(jobs)) as bar:
        by_width: dict[T.Optional[int], list[int]] = {}
        for index, (_, width, _) in enumerate(jobs):
            by_width.setdefault(width, []).append(index)
        for width, indices in by_width.items():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                clips = generate_clips(pipeline, [jobs[i][0] for i in chunk], phase=phase, width=width,
                                       batch_size=batch_size)
                for index, clip in zip(chunk, clips):
                    base = os.path.join(output_dir, jobs[index][2])
                    clip.write_audio(f"{base}.{extension}")
                    written.append(f"{base}.{extension}")
                    if images:
                        clip.save_image(f"{base}.png")
                        written.append(f"{base}.png")
                    bar.update(1)
    for path in written:
        print(path)
    return written


def download(*, model: str = "riffusion/riffusion-model-v1", cache_dir: T.Optional[str] = None) -> str:
    """Fetch a hub model into the local Hugging Face cache, so later commands find it offline."""
    from riffusion.loading import TINY_RANDOM, download_model, shipped_models

    if model == TINY_RANDOM:
        print("tiny-random is built in memory; nothing to download", file=sys.stderr)
        return TINY_RANDOM
    if model in shipped_models():
        print(f"{model} ships with riffusion; nothing to download", file=sys.stderr)
        return model
    path = download_model(model, cache_dir=cache_dir)
    print(str(path))
    return str(path)


# --- parser -----------------------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("text-to-audio-batch", help="generate every entry of a JSON file of prompts")
    p.add_argument("--json-file", required=True,
                   help='{"params": {"seed": 1, "num_inference_steps": 25, ...}, "entries": [{"prompt": "..."}, ...]}')
    p.add_argument("--output-dir", required=True)
    p.add_argument("--extension", default="wav", help="audio format: wav, flac, ogg, mp3 (default: wav)")
    p.add_argument("--images", action="store_true", help="also write each spectrogram image (.png)")
    _model_flags(p)
    p.set_defaults(_command=text_to_audio_batch)

    p = subparsers.add_parser("download", help="fetch a hub model into the local cache (needs a network)")
    p.add_argument("model", nargs="?", default="riffusion/riffusion-model-v1",
                   help="hub id (default: riffusion/riffusion-model-v1)")
    p.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: HF_HOME's)")
    p.set_defaults(_command=download)
