"""Benchmark: how well the tempo statistic of the steering evaluation tells slow music from fast.

    riffusion dataset build --out data/ds-tempo --sources mma --max-grooves 120 --parts 0   # ~3 min
    python bench/bench_tempo.py --data data/ds-tempo
    python bench/bench_tempo.py --data data/ds-small-v3 --sources mma part --split 75 130 --threads 1  # a model's own data

The evaluation (``python -m riffusion.training.evaluation``) counts the seeds in which "a very slow sleepy
lullaby" measures a lower tempo than "a fast frantic dance track" with
:func:`riffusion.dataset.features.estimate_tempo`. This script asks what that statistic can do at best: on
rendered clips whose tempo is known from the score (MMA grooves, and with ``--sources mma part`` the
generated melodies too), turned into images and back into audio exactly
as generated images are (the default phase reconstruction), how often does it get the order of a truly
slow clip and a truly fast one right (<= 85 vs >= 130 bpm, and the extremes the evaluation's prompts ask
for, <= 75 vs >= 150 bpm)? A model whose every "slow" clip were really slow and every "fast" clip really
fast would score about that share, not 100 %.

Rows: the statistic with each octave choice (``estimate_tempo(octave=...)``: the prior's, which dataset
captions use, and the onset rate's, which the evaluation also reports), then onsets per second, the
evaluation's third view of the pair (it has no tempo of its own, so only the order is given). Figures: share measured within
5 % of the score's tempo, within 5 % of it or of half or twice it (octave errors allowed), and the share of
(slow, fast) pairs measured in the right order for each split, with the medians of the slow and fast
clips.
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
    parser.add_argument("--split", type=float, nargs=2, action="append", metavar=("SLOW_MAX", "FAST_MIN"),
                        help="score tempo of a slow clip at most and of a fast clip at least (bpm); repeatable "
                             "(default: 85 130 and 75 150)")
    parser.add_argument("--sources", nargs="+", default=["mma"], metavar="SOURCE",
                        help="metadata sources whose clips have a score tempo: 'mma' (grooves, the default) and "
                             "'part' (generated melodies)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    metadata = args.data / "metadata.jsonl"
    if not metadata.is_file():
        print(f"bench_tempo.py: error: no metadata.jsonl in {args.data}; make one with `riffusion dataset build "
              f"--out {args.data} --sources mma --max-grooves 120 --parts 0`", file=sys.stderr)
        return 2
    splits = args.split or [(85.0, 130.0), (75.0, 150.0)]
    for slow_max, fast_min in splits:
        if not 0 < slow_max < fast_min:
            parser.error(f"--split needs 0 < SLOW_MAX < FAST_MIN, got {slow_max:g} {fast_min:g}")

    import torch
    from PIL import Image

    from riffusion.dataset import features
    from riffusion.image import params_from_image
    from riffusion.spectrogram_image_converter import SpectrogramImageConverter

    torch.set_num_threads(args.threads)
    rows = [json.loads(line) for line in metadata.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("source") in args.sources and isinstance(r.get("tempo_bpm"), (int, float))]
    if not rows:
        print(f"bench_tempo.py: error: no clips of sources {' '.join(args.sources)} with a score tempo in {metadata}",
              file=sys.stderr)
        return 2
    true, measured, converters = [], {octave: [] for octave in features.TEMPO_OCTAVES}, {}
    onsets = []  # onsets per second: not a tempo, but the pace a listener hears, ordered the same way
    for i, row in enumerate(rows):
        image = Image.open(args.data / row["file_name"])
        params = params_from_image(image, warn=False)
        if params not in converters:  # the evaluation's image -> audio path, default phase
            converters[params] = SpectrogramImageConverter(params, device="cpu")
        audio = converters[params].waveform_from_image(image)
        true.append(float(row["tempo_bpm"]))
        for octave, values in measured.items():
            values.append(features.estimate_tempo(audio, params.sample_rate, octave=octave))
        onsets.append(features.onset_rate(audio, params.sample_rate))
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(rows)} clips", file=sys.stderr, flush=True)
    true_a = np.array(true)
    print(f"tempo statistic on {len(rows)} rendered clips ({', '.join(args.sources)}; image -> audio, default phase), "
          f"{args.data}")
    header = f"{'octave':12s} {'within 5 %':>10s} {'or x0.5/x2':>10s}"
    for slow_max, fast_min in splits:
        header += f"  {f'<= {slow_max:g} < >= {fast_min:g} (medians)':>34s}"
    print(header)
    def order_cells(values: np.ndarray, unit: str, digits: int) -> str:
        """Per split: the share of (slow, fast) pairs with the slow clip's value below, and the medians."""
        cells = ""
        for slow_max, fast_min in splits:
            slow, fast = true_a <= slow_max, true_a >= fast_min
            cell = "n/a"
            if slow.any() and fast.any():
                order = float(np.mean(values[slow][:, None] < values[fast][None, :]))
                cell = f"{order:.1%} ({np.median(values[slow]):.{digits}f} -> {np.median(values[fast]):.{digits}f} {unit})"
            cells += f"  {cell:>34s}"
        return cells

    for octave, values in measured.items():
        est = np.array(values)
        within = np.abs(est / true_a - 1) < 0.05
        octave_ok = np.min([np.abs(est / (true_a * k) - 1) for k in (0.5, 1.0, 2.0)], axis=0) < 0.05
        print(f"{octave:12s} {within.mean():10.1%} {octave_ok.mean():10.1%}" + order_cells(est, "bpm", 0))
    print(f"{'onset rate':12s} {'':>10s} {'':>10s}" + order_cells(np.array(onsets), "/s", 1))
    for slow_max, fast_min in splits:
        print(f"  clips: {int((true_a <= slow_max).sum())} at <= {slow_max:g} bpm, "
              f"{int((true_a >= fast_min).sum())} at >= {fast_min:g} bpm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
