"""Benchmark: training throughput of `riffusion train` on riffusion-small, per device, precision and batch size.

    python bench/bench_train.py                                   # this machine's CPU (and CUDA if present)
    python bench/bench_train.py --devices cpu cuda --batch-sizes 16 256 --precisions no bf16

Every cell runs the real training loop (``riffusion.training.train``: batch from the in-memory images,
noising, UNet forward and backward, gradient clipping, AdamW, EMA) for ``--warmup`` steps that are not
timed and then ``--steps`` timed ones, fine-tuning ``--model`` (default: the shipped model, so the
architecture is the shipped one) on a dataset that ``riffusion dataset build`` makes from synthetic tones
(``--data`` takes a real one instead; throughput does not depend on what the images show). The time of a
step is what the loop logs (``log.jsonl``); checkpoints are written outside it.

Columns: training samples (images) per second, milliseconds per step, the speed ratio to the baseline,
and how long the shipped model's 223,760 training samples (four stages, 13,985 steps of batch 16) would
take at that rate. Baseline, "cpu fp32 b16": the setting that trained the shipped model (batch 16, float32
on the CPU); it always runs first, on ``--threads`` threads.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# Steps of batch 16 in the shipped model's four training stages (its model card, "Measured").
SHIPPED_STEPS = (2206, 4799, 4258, 2722)
SHIPPED_SAMPLES = 16 * sum(SHIPPED_STEPS)


def synthetic_dataset(folder: Path, *, tracks: int = 16, seconds: float = 41.0) -> Path:
    """A dataset of ``tracks`` captioned synthetic tracks (tones with pulses), built by the real builder."""
    from riffusion.audio import write_audio
    from riffusion.dataset import DatasetConfig, build_dataset
    from riffusion.dataset.presets import SMALL_PARAMS

    sr = SMALL_PARAMS.sample_rate
    t = np.arange(int(seconds * sr)) / sr
    audio_dir = folder / "tracks"
    audio_dir.mkdir(parents=True)
    rows = ["file_name,caption"]
    for i in range(tracks):
        freq, pulse = 60.0 * 1.4 ** (i % 12), (0.0, 2.0, 4.0, 8.0)[i % 4]
        gate = (np.sin(2 * np.pi * pulse * t) > 0) if pulse else 1.0
        x = 0.3 * np.sin(2 * np.pi * freq * t) * gate + 0.05 * np.sin(2 * np.pi * 2.01 * freq * t)
        write_audio(audio_dir / f"track{i:02d}.wav", x[None].astype(np.float32), sr)
        rows.append(f"track{i:02d}.wav,a tone at {freq:.0f} Hz pulsing {pulse:g} times per second")
    (audio_dir / "captions.csv").write_text("\n".join(rows) + "\n")
    build_dataset(folder / "ds", DatasetConfig(params=SMALL_PARAMS, sources=(), user_folder=str(audio_dir)),
                  progress=False, log=lambda m: None)
    return folder / "ds"


def run_cell(data: Path, work: Path, *, model: str, device: str, precision: str, batch_size: int,
             warmup: int, steps: int) -> dict:
    """Train ``warmup + steps`` steps in a new run folder; return the timed steps' throughput."""
    from riffusion.training import TrainConfig, train

    out = work / f"{device}-{precision}-b{batch_size}"
    config = TrainConfig(data_dir=str(data), output_dir=str(out), model=model, max_steps=warmup + steps,
                         batch_size=batch_size, learning_rate=1e-5, warmup_steps=1, checkpoint_every=10**9,
                         checkpoint_minutes=10**6, sample_every=0, mixed_precision=precision, device=device)
    train(config, progress=False, log=lambda m: None)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    timed = [r for r in rows if r["step"] > warmup]
    seconds = [batch_size / r["samples_per_s"] for r in timed]
    rate = batch_size * len(timed) / sum(seconds)
    return {"device": device, "precision": precision, "batch_size": batch_size, "steps": len(timed),
            "samples_per_s": rate, "ms_per_step": 1000 * statistics.median(seconds),
            "loss": timed[-1]["loss"]}


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="riffusion-small-v1", help="riffusion-small folder or shipped name")
    parser.add_argument("--data", type=Path, default=None, help="a dataset folder (default: synthetic tones)")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16])
    parser.add_argument("--precisions", nargs="+", default=["no"], choices=("no", "fp16", "bf16"),
                        help="accelerate mixed precision; the CPU baseline is always fp32 ('no')")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per cell")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per cell")
    parser.add_argument("--cpu-steps", type=int, default=None, help="timed steps of CPU cells (default --steps)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--cell", nargs=4, metavar=("DATA", "DEVICE", "PRECISION", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.batch_sizes) < 1 or args.steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--batch-sizes, --steps and --threads must be >= 1 and --warmup >= 0")
    torch.set_num_threads(args.threads)
    if args.cell:  # one cell, in its own process: accelerate's state is per process (the first device sticks)
        data, device, precision, batch = args.cell
        with tempfile.TemporaryDirectory(prefix="bench-train-cell-") as tmp:
            steps = args.cpu_steps if device == "cpu" and args.cpu_steps else args.steps
            row = run_cell(Path(data), Path(tmp), model=args.model, device=device, precision=precision,
                           batch_size=int(batch), warmup=args.warmup, steps=steps)
        print(json.dumps(row))
        return 0
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    for device in devices:
        if device.startswith("cuda") and not torch.cuda.is_available():
            parser.error(f"--devices {device}: torch {torch.__version__} sees no CUDA device here")

    cells = [("cpu", "no", 16)]  # the baseline first
    for device in devices:
        for precision in args.precisions if device != "cpu" else ["no"]:
            for batch in args.batch_sizes:
                if (device, precision, batch) not in cells:
                    cells.append((device, precision, batch))

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        data = args.data or synthetic_dataset(work / "data")
        n_images = sum(1 for _ in open(Path(data) / "metadata.jsonl", encoding="utf-8"))
        print(f"dataset: {n_images} images ({time.perf_counter() - t0:.1f} s to build)" if args.data is None
              else f"dataset: {data}, {n_images} images", file=sys.stderr)
        results = []
        for device, precision, batch in cells:
            command = [sys.executable, __file__, "--cell", str(data), device, precision, str(batch), "--model",
                       args.model, "--warmup", str(args.warmup), "--steps", str(args.steps), "--threads",
                       str(args.threads)] + (["--cpu-steps", str(args.cpu_steps)] if args.cpu_steps else [])
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                sys.stderr.write(done.stderr)
                print(f"error: the {device} {precision} b{batch} cell failed (exit {done.returncode})", file=sys.stderr)
                return 1
            row = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(row)
            print(f"  {device} {precision} b{batch}: {row['samples_per_s']:.1f} samples/s", file=sys.stderr)

    gpu = torch.cuda.get_device_name(0) if any(d.startswith("cuda") for d in devices) else None
    print(f"riffusion train throughput, --model {args.model}, torch {torch.__version__}, {args.threads} CPU threads"
          + (f", {gpu}" if gpu else ""))
    header = f"{'device':<8}{'precision':>10}{'batch':>7}{'samples/s':>11}{'ms/step':>10}{'speed x':>9}  shipped model's samples"
    print(header)
    print("-" * len(header))
    base = results[0]["samples_per_s"]
    for row in results:
        label = "fp32" if row["precision"] == "no" else row["precision"]
        print(f"{row['device']:<8}{label:>10}{row['batch_size']:>7}{row['samples_per_s']:>11.1f}"
              f"{row['ms_per_step']:>10.1f}{row['samples_per_s'] / base:>9.1f}  {_hours(SHIPPED_SAMPLES / row['samples_per_s'])}")
    print(f"(baseline: cpu fp32 b16, the shipped model's setting; {SHIPPED_SAMPLES:,} samples = its four stages)")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "torch": torch.__version__, "gpu": gpu,
                                         "threads": args.threads, "rows": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
