"""Benchmark: how well the tempo statistic of the steering evaluation tells slow music from fast.

    riffusion dataset build --out data/ds-tempo --sources mma --max-grooves 120 --parts 0   # ~3 min
    python bench/bench_tempo.py --data data/ds-tempo

The evaluation (``python -m riffusion.training.evaluation``) counts the seeds in which "a very slow sleepy
lullaby" measures a lower tempo than "a fast frantic dance track" with
:func:`riffusion.dataset.features.estimate_tempo`. This script asks what that statistic can do at best: on
rendered MMA grooves whose tempo is known from the score, turned into images and back into audio exactly
as generated images are (the default phase reconstruction), how often does it get the order of a truly
slow clip (<= 85 bpm) and a truly fast one (>= 130 bpm) right? A model whose every "slow" clip were
really slow and every "fast" clip really fast would score about that share, not 100 %.

Columns: clips with a known tempo, share measured within 5 % of the score's tempo, within 5 % of it or of
half or twice it (octave errors allowed), and the share of (slow, fast) pairs measured in the right order.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a dataset folder from `riffusion dataset build`")
    parser.add_argument("--slow-max", type=float, default=85.0, help="score tempo of a slow clip, at most (bpm)")
    parser.add_argument("--fast-min", type=float, default=130.0, help="score tempo of a fast clip, at least (bpm)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    metadata = args.data / "metadata.jsonl"
    if not metadata.is_file():
        print(f"bench_tempo.py: error: no metadata.jsonl in {args.data}; make one with `riffusion dataset build "
              f"--out {args.data} --sources mma --max-grooves 120 --parts 0`", file=sys.stderr)
        return 2
    if not 0 < args.slow_max < args.fast_min:
        parser.error(f"need 0 < --slow-max < --fast-min, got {args.slow_max} and {args.fast_min}")

    import torch
    from PIL import Image

    from riffusion.dataset import features
    from riffusion.image import params_from_image
    from riffusion.spectrogram_image_converter import SpectrogramImageConverter

    torch.set_num_threads(args.threads)
    rows = [json.loads(line) for line in metadata.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("source") == "mma" and isinstance(r.get("tempo_bpm"), (int, float))]
    if not rows:
        print(f"bench_tempo.py: error: no MMA clips with a score tempo in {metadata}", file=sys.stderr)
        return 2
    true, measured, converters = [], [], {}
    for i, row in enumerate(rows):
        image = Image.open(args.data / row["file_name"])
        params = params_from_image(image, warn=False)
        if params not in converters:  # the evaluation's image -> audio path, default phase
            converters[params] = SpectrogramImageConverter(params, device="cpu")
        audio = converters[params].waveform_from_image(image)
        true.append(float(row["tempo_bpm"]))
        measured.append(features.estimate_tempo(audio, params.sample_rate))
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(rows)} clips", file=sys.stderr, flush=True)
    true_a, est = np.array(true), np.array(measured)
    within = np.abs(est / true_a - 1) < 0.05
    octave = np.min([np.abs(est / (true_a * k) - 1) for k in (0.5, 1.0, 2.0)], axis=0) < 0.05
    slow, fast = true_a <= args.slow_max, true_a >= args.fast_min
    order = float(np.mean(est[slow][:, None] < est[fast][None, :])) if slow.any() and fast.any() else float("nan")
    print(f"tempo statistic on {len(rows)} rendered MMA clips (image -> audio, default phase), {args.data}")
    print(f"  within 5 % of the score's tempo:                  {within.mean():6.1%}")
    print(f"  within 5 % of it, half or twice it:               {octave.mean():6.1%}")
    print(f"  slow (<= {args.slow_max:g} bpm, {slow.sum()}) measured below fast (>= {args.fast_min:g} bpm, "
          f"{fast.sum()}): {order:6.1%} of pairs")
    print(f"  medians: slow {np.median(est[slow]) if slow.any() else float('nan'):.1f} bpm, "
          f"fast {np.median(est[fast]) if fast.any() else float('nan'):.1f} bpm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
