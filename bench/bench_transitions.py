"""Benchmark: how evenly the jam's transitions change the sound, by where clips between end points branch off.

    python bench/bench_transitions.py                              # the default model: unbranched vs its own setting
    python bench/bench_transitions.py --branch 0 0.5 0.67 0.83     # several settings (0 = unbranched, the baseline)
    python bench/bench_transitions.py --sweeps measured            # the evaluation's three sweeps, not the tuning ones

A transition is a run of clips along alpha between two end points, each a prompt at a seed. Each
``transition_branch`` (:class:`riffusion.small.SmallModelConfig`) is measured on the same sweeps (11 clips,
alpha 0 to 1) at the model's jam settings (its first seed loop, ``default_denoising``, steps, guidance), in
the three shapes of :mod:`riffusion.training.evaluation`: prompt and seed changed at once (``both``), as the
jam reaches a typed prompt at the current seed (``prompt``) and as it walks one prompt to the next seed
(``seed``). Printed per setting and shape, averaged over the sweeps: the largest step between successive
clips over the mean step (1.0: even; the target is <= 1.2) and the worst sweep's, the mean step in dB, how far
the middle clip is from a plain mix of the two end clips (a share of the distance between the ends: near 0 is
a cross-fade, larger makes new music on the way), and the seconds the sweeps took against the baseline's.

The ten ``tuning`` sweeps (the default) are for choosing a setting; ``measured`` are the evaluation's own
three (:data:`riffusion.training.evaluation.INTERPOLATION_SWEEPS`), to be measured once a setting is chosen.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import sys
import time

import numpy as np

#: (start prompt, start seed, end prompt, end seed) for choosing settings; none is an evaluation sweep or a
#: training caption.
TUNING_SWEEPS = (
    ("a mellow jazz trio", 51, "an aggressive punk rock song", 52),
    ("soft harp arpeggios", 61, "a deep dubstep bass drop", 62),
    ("a lonely harmonica blues", 71, "a bright synth pop anthem", 72),
    ("church organ chords", 81, "fast bongo percussion", 82),
    ("a quiet music box lullaby", 91, "a roaring big band swing", 92),
    ("reggae offbeat guitar", 101, "a cinematic orchestral climax", 102),
    ("a lo-fi hip hop beat", 111, "baroque harpsichord counterpoint", 112),
    ("celtic fiddle reel", 121, "industrial noise techno", 122),
    ("a smooth bossa nova", 131, "a thrash metal riff", 132),
    ("gentle ocean ambient", 141, "a funky slap bass line", 142),
)

SHAPES = {
    "both": lambda sp, ss, ep, es: (sp, ss, ep, es),
    "prompt": lambda sp, ss, ep, es: (sp, ss, ep, ss),
    "seed": lambda sp, ss, ep, es: (sp, ss, sp, ss + 1),
}


def measure(pipe, branch: float, sweeps, init) -> tuple[dict[str, list[dict]], float]:
    """Every sweep in every shape with ``transition_branch = branch``; and the seconds it took."""
    from riffusion.training.evaluation import alpha_sweep

    pipe.config.transition_branch = branch
    pipe._branch_cache.clear()
    start = time.perf_counter()
    results = {name: [alpha_sweep(pipe, *((p0, s0), (p1, s1)), init_image=init, denoising=pipe.default_denoising,
                                  guidance=pipe.default_guidance, steps=pipe.default_num_inference_steps)
                      for p0, s0, p1, s1 in (shape(*ends) for ends in sweeps)]
               for name, shape in SHAPES.items()}
    return results, time.perf_counter() - start


def main(argv=None) -> int:
    from riffusion.small import DEFAULT_SMALL_MODEL, SmallModelConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_SMALL_MODEL)
    parser.add_argument("--branch", type=float, nargs="+", default=None,
                        help="transition_branch values (default: 0 and the model's own)")
    parser.add_argument("--sweeps", choices=("tuning", "measured"), default="tuning")
    args = parser.parse_args(argv)
    for value in args.branch or ():
        try:
            SmallModelConfig(transition_branch=value)
        except ValueError as error:
            parser.error(str(error))

    import torch
    from PIL import Image

    from riffusion.small import load_small_pipeline
    from riffusion.training.evaluation import INTERPOLATION_SWEEPS

    torch.set_num_threads(1)
    pipe = load_small_pipeline(args.model)
    own = pipe.config.transition_branch
    branches = args.branch or sorted({0.0, own})
    seed_path = pipe.path / "seed_images" / "og_beat.png" if pipe.path is not None else None
    init = Image.open(seed_path).convert("RGB") if seed_path is not None and seed_path.is_file() else None
    sweeps = TUNING_SWEEPS if args.sweeps == "tuning" else INTERPOLATION_SWEEPS
    pipe.text_to_image("warm-up", seed=0)  # one-off costs (the parallel-guidance trace) out of the times

    print(f"transitions of {args.model} ({'seed loop og_beat' if init is not None else 'no seed loop'}, denoising "
          f"{pipe.default_denoising:g}, {pipe.default_num_inference_steps} steps, guidance {pipe.default_guidance:g}; "
          f"its own transition_branch {own:g}), {len(sweeps)} {args.sweeps} sweeps x 11 clips per shape, "
          f"torch {torch.__version__}, 1 thread")
    header = f"{'branch':>6} {'shape':>6} {'max/mean':>8} {'worst':>6} {'step dB':>7} {'middle from mix':>15} {'time':>6}"
    print(header)
    print("-" * len(header))
    baseline = None
    for branch in branches:
        results, seconds = measure(pipe, branch, sweeps, init)
        baseline = baseline or seconds
        for name, rows in results.items():
            ratios = [r["max_over_mean"] for r in rows]
            print(f"{branch:6.2f} {name:>6} {np.mean(ratios):8.2f} {np.max(ratios):6.2f} "
                  f"{np.mean([r['mean_step_db'] for r in rows]):7.2f} "
                  f"{np.mean([r['middle_from_mix'] for r in rows]):15.2f} "
                  + (f"{seconds / baseline:5.2f}x" if name == "both" else ""))
    print("max/mean: largest step between successive clips over the mean (target <= 1.2); middle from mix: the "
          "middle clip's distance from the mean of the end clips' dB images over the ends' distance; time: all "
          "three shapes against the first row's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
