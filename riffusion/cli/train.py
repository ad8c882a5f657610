"""``riffusion train``: train the small model from scratch or fine-tune any loadable model on a dataset."""

from __future__ import annotations

import argparse

COMMANDS = ("train",)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune a model on a dataset (resumable)",
        description=(
            "Train a new riffusion-small model (default) or fine-tune one (--model FOLDER or shipped name), or "
            "fine-tune any Stable Diffusion model the loader reads (tiny-random, riffusion/riffusion-model-v1, a "
            "diffusers folder), fully or with LoRA (--lora-rank). Uses accelerate: run it with `accelerate "
            "launch -m riffusion train ...` for several GPUs. Re-running the same command resumes from the newest "
            "checkpoint in --output-dir."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="dataset folder (riffusion dataset build)")
    parser.add_argument("--output-dir", required=True, help="run folder: checkpoints, samples, model/")
    parser.add_argument("--model", default=None,
                        help="start from this model (default: a new riffusion-small)")
    parser.add_argument("--lora-rank", type=int, default=0, help="LoRA rank for Stable Diffusion models (0: full)")
    parser.add_argument("--max-steps", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--warmup-steps", type=int, default=200)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--uncond-prob", type=float, default=0.1, help="caption dropout for guidance")
    parser.add_argument("--checkpoint-every", type=int, default=250, help="steps between checkpoints")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0, help="also checkpoint this often")
    parser.add_argument("--sample-every", type=int, default=1000, help="steps between samples (0: none)")
    parser.add_argument("--sample-prompt", action="append", default=None, dest="sample_prompt",
                        help="prompt for periodic samples (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--channels", default=None,
                        help="riffusion-small UNet widths, comma-separated (default 64,128,256)")
    parser.add_argument("--caption-variants", action="store_true",
                        help="also train on short variants of each caption (instruments only, tempo words, style)")
    parser.add_argument("--oversample", action="append", default=None, metavar="REGEX=FACTOR",
                        help="show clips whose caption matches REGEX (case-insensitive) FACTOR times per epoch "
                             "(repeatable; the largest matching factor wins; with --caption-variants any caption "
                             "of the clip may match), e.g. 'sustained=3'")
    parser.add_argument("--rhythm-input", action="store_true",
                        help="riffusion-small: give the model a rhythm input (each clip's beat and bar phase), so "
                             "tempo and beat come from a loop or a BPM while the prompt decides the sound; a "
                             "fine-tune of a model without one starts from exactly that model")
    parser.add_argument("--rhythm-drop-prob", type=float, default=0.2,
                        help="with a rhythm input: share of clips trained without one (for free rhythm)")
    parser.add_argument("--export", default=None,
                        help="also copy the final model folder here (e.g. riffusion/models/riffusion-small-v1)")
    parser.set_defaults(_command=train)


def train(
    *, data: str, output_dir: str, model: str | None = None, lora_rank: int = 0, max_steps: int = 10000,
    batch_size: int = 16, learning_rate: float = 3e-4, warmup_steps: int = 200, ema_decay: float = 0.999,
    uncond_prob: float = 0.1, checkpoint_every: int = 250, checkpoint_minutes: float = 5.0,
    sample_every: int = 1000, sample_prompt: list[str] | None = None, seed: int = 0,
    mixed_precision: str = "no", device: str = "auto", threads: int | None = None, channels: str | None = None,
    export: str | None = None, caption_variants: bool = False, oversample: list[str] | None = None,
    rhythm_input: bool = False, rhythm_drop_prob: float = 0.2,
) -> None:
    """Train as ``riffusion train --help`` says; prints a summary line at the end."""
    import shutil
    import sys
    from pathlib import Path

    import torch

    from riffusion.files import atomic_folder, keep_beside
    from riffusion.training import DEFAULT_SAMPLE_PROMPTS, TrainConfig
    from riffusion.training import train as run

    if threads:
        torch.set_num_threads(threads)
    small_config = {}
    if channels:
        try:
            small_config["block_out_channels"] = [int(c) for c in channels.split(",")]
        except ValueError:
            raise ValueError(f"--channels must be comma-separated integers, got {channels!r}") from None
    if rhythm_input:
        from riffusion.rhythm import RHYTHM_FEATURES

        small_config["rhythm_channels"] = RHYTHM_FEATURES
    config = TrainConfig(
        data_dir=data, output_dir=output_dir, model=model, lora_rank=lora_rank, max_steps=max_steps,
        batch_size=batch_size, learning_rate=learning_rate, warmup_steps=warmup_steps, ema_decay=ema_decay,
        uncond_prob=uncond_prob, checkpoint_every=checkpoint_every, checkpoint_minutes=checkpoint_minutes,
        sample_every=sample_every, sample_prompts=tuple(sample_prompt or DEFAULT_SAMPLE_PROMPTS), seed=seed,
        mixed_precision=mixed_precision, device=device, small_config=small_config,
        caption_variants=caption_variants, oversample=tuple(oversample or ()), rhythm_drop_prob=rhythm_drop_prob,
    )
    result = run(config, log=lambda m: print(m, file=sys.stderr))
    if export and not result.stopped:
        target = Path(export)
        with atomic_folder(target) as tmp:
            shutil.copytree(result.model_dir, tmp, dirs_exist_ok=True)
            keep_beside(target, tmp, ("README.md", "seed_images", "figures"))
    state = "stopped" if result.stopped else "finished"
    print(f"{state} at step {result.step} (loss {result.loss:.4f}, {result.elapsed_s / 60:.1f} min trained); "
          f"model: {result.model_dir}", file=sys.stderr)
