"""Copy a run's exported model into the package with figures and measurements for its model card.

``python -m riffusion.training.publish --run runs/small-v1 --to riffusion/models/riffusion-small-v1``

Copies ``<run>/model`` (EMA weights, fp16) over the target's weights, keeping the target's README.md and
seed_images/, then writes ``figures/loss.png`` (training loss), ``figures/samples.png`` (spectrograms for
prompts in and out of the training captions, from noise and img2img from ``og_beat``),
``figures/training.json`` (step, training time, loss) and, with ``--evaluate``, ``figures/eval.json``
(:mod:`riffusion.training.evaluation`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import typing as T
from pathlib import Path

SAMPLE_PROMPTS = (
    "solo flute melody",
    "deep bass line",
    "drums playing a rock beat",
    "warm sustained synth pad chords",
    "a sad violin under the rain",  # not a training caption
    "heavy metal guitar riff",  # not a training caption
)


def publish(run_dir: T.Union[str, Path], target: T.Union[str, Path], *, evaluate_seeds: int = 0,
            steps: T.Optional[int] = None, guidance: T.Optional[float] = None,
            denoising_gamma: T.Optional[float] = None, guidance_min_timestep: T.Optional[int] = None,
            default_denoising: T.Optional[float] = None, rhythm_guidance_scale: T.Optional[float] = None,
            transition_branch: T.Optional[float] = None, log: T.Callable[[str], None] = print) -> dict[str, T.Any]:
    """Copy ``run_dir/model`` to ``target`` (see the module docstring); ``steps``, ``guidance``,
    ``denoising_gamma``, ``guidance_min_timestep``, ``default_denoising``, ``rhythm_guidance_scale`` and
    ``transition_branch`` set the model's defaults in ``riffusion_model.json`` (see
    :class:`riffusion.small.SmallModelConfig`)."""
    from PIL import Image

    from riffusion.files import atomic_folder, keep_beside
    from riffusion.small import SmallModelConfig, SmallRiffusionPipeline
    from riffusion.training.figures import loss_curve, spectrogram_grid

    run_dir, target = Path(run_dir), Path(target)
    overrides = {name: value for name, value in (
        ("num_inference_steps", None if steps is None else int(steps)),
        ("guidance_scale", None if guidance is None else float(guidance)),
        ("denoising_gamma", None if denoising_gamma is None else float(denoising_gamma)),
        ("guidance_min_timestep", guidance_min_timestep),
        ("default_denoising", None if default_denoising is None else float(default_denoising)),
        ("rhythm_guidance_scale", None if rhythm_guidance_scale is None else float(rhythm_guidance_scale)),
        ("transition_branch", None if transition_branch is None else float(transition_branch)),
    ) if value is not None}
    SmallModelConfig(**overrides)  # the model's own checks of these values, before anything is written
    source = run_dir / "model"
    if not (source / "riffusion_model.json").is_file():
        raise FileNotFoundError(f"{str(source)!r} holds no exported riffusion-small model")
    with atomic_folder(target) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        keep_beside(target, tmp, ("README.md", "seed_images"), replace=True)  # the package's card and seeds win
        if overrides:
            config = {**json.loads((tmp / "riffusion_model.json").read_text()), **overrides}
            (tmp / "riffusion_model.json").write_text(json.dumps(config, indent=2) + "\n")

    figures = target / "figures"
    figures.mkdir(exist_ok=True)
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    tail = rows[-50:]
    training = {"step": rows[-1]["step"], "training_time_s": rows[-1]["elapsed_s"],
                "loss_last_50_mean": sum(r["loss"] for r in tail) / len(tail)}
    (figures / "training.json").write_text(json.dumps(training, indent=2) + "\n")
    loss_curve(run_dir / "log.jsonl", figures / "loss.png")

    pipe = SmallRiffusionPipeline.from_pretrained(target)
    seed_path = target / "seed_images" / "og_beat.png"
    images, labels = [], []
    for i, prompt in enumerate(SAMPLE_PROMPTS):
        images.append(pipe.text_to_image(prompt, seed=i))
        labels.append(f"{prompt} (from noise)")
        if seed_path.is_file():
            strength = pipe.default_denoising
            images.append(pipe.text_to_image(prompt, seed=i, init_image=Image.open(seed_path), denoising=strength))
            labels.append(f"{prompt} (og_beat, denoising {strength:g})")
    spectrogram_grid(images, labels, figures / "samples.png")
    result: dict[str, T.Any] = {"training": training}
    if evaluate_seeds:
        from riffusion.training.evaluation import evaluate

        result["eval"] = evaluate(str(target), seeds=evaluate_seeds, log=log)
        (figures / "eval.json").write_text(json.dumps(result["eval"], indent=2) + "\n")
    log(f"published step {training['step']} ({training['training_time_s'] / 60:.0f} min of training) to {target}")
    return result


def main(argv: T.Optional[T.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m riffusion.training.publish", description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--evaluate", type=int, default=0, metavar="SEEDS", help="also measure the targets")
    parser.add_argument("--steps", type=int, default=None, help="default sampling steps of the published model")
    parser.add_argument("--guidance", type=float, default=None, help="default guidance of the published model")
    parser.add_argument("--denoising-gamma", type=float, default=None,
                        help="img2img strength calibration of the published model (strength ** gamma)")
    parser.add_argument("--guidance-min-timestep", type=int, default=None, metavar="T",
                        help="guide only the steps whose timestep (0-999) is at least T")
    parser.add_argument("--default-denoising", type=float, default=None,
                        help="the denoising from a seed loop the published model is played at (the jam's default)")
    parser.add_argument("--rhythm-guidance-scale", type=float, default=None,
                        help="a rhythm model's beat guidance apart from the prompt's (1: prompt only; the guidance: joint)")
    parser.add_argument("--transition-branch", type=float, default=None, metavar="SHARE",
                        help="the share of the steps a transition's end points run before the clips between them "
                             "branch off (0: none)")
    args = parser.parse_args(argv)
    try:
        publish(args.run, args.to, evaluate_seeds=args.evaluate, steps=args.steps, guidance=args.guidance,
                denoising_gamma=args.denoising_gamma, guidance_min_timestep=args.guidance_min_timestep,
                default_denoising=args.default_denoising, rhythm_guidance_scale=args.rhythm_guidance_scale,
                transition_branch=args.transition_branch, log=lambda m: print(m, file=sys.stderr))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
