"""Benchmark: text -> audio with the shipped small model, sampler and threading settings side by side.

    python bench/bench_small.py                 # 7 prompts x each setting, interleaved, one process
    python bench/bench_small.py --prompts 15 --model path/to/riffusion-small-folder

Every setting runs in this one process, interleaved prompt by prompt (so a change in the shared host's
load hits all of them alike), on prompts it has not seen before (no text-embedding cache hits). The timed
span is what ``riffusion text-to-audio`` does after loading: prompt encoding, diffusion from noise, image
-> waveform with the default phase method. Each setting is warmed up once first (the parallel path traces
the UNet on its first call of a shape, ~0.75 s, once per process).

Baseline, "eager dpm++ 12": the settings the model shipped with before this benchmark existed: DPM-Solver++
(2M), 12 steps, classifier-free guidance on every step as one batch-2 UNet call per step on one intra-op
thread. The shipped model now guides only the steps with t >= 500 (``guidance_min_timestep``), the later
ones being one unguided call; the "t>=500" rows measure that, in parallel and eager form.

Columns: median seconds per clip end to end, the real-time factor (seconds per second of audio; the
target is <= 0.2), the image and audio parts, and the speed ratio to the baseline. Steering quality of a
setting is not measured here: ``python -m riffusion.training.evaluation`` does that (minutes per setting).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import dataclasses
import statistics
import sys
import time

import torch

# (label, sampler, steps, parallel guidance, guidance_min_timestep: guided only on steps t >= this)
SETTINGS = (
    ("eager dpm++ 12 (baseline)", "dpmsolver++", 12, False, 0),
    ("parallel dpm++ 12", "dpmsolver++", 12, True, 0),
    ("parallel unipc 10", "unipc", 10, True, 0),
    ("parallel unipc 10, t>=500", "unipc", 10, True, 500),
    ("eager unipc 10, t>=500", "unipc", 10, False, 500),
    ("parallel unipc 8", "unipc", 8, True, 0),
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="riffusion-small-v1", help="a riffusion-small folder or shipped name")
    parser.add_argument("--prompts", type=int, default=7, help="prompts per setting (median over them)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads of the process")
    args = parser.parse_args(argv)
    if args.prompts < 1 or args.threads < 1:
        parser.error(f"--prompts and --threads must be >= 1, got {args.prompts} and {args.threads}")
    torch.set_num_threads(args.threads)

    from riffusion.small import load_small_pipeline
    from riffusion.spectrogram_image_converter import SpectrogramImageConverter

    pipe = load_small_pipeline(args.model)
    converter = SpectrogramImageConverter(pipe.spectrogram_params, device="cpu", phase="default")
    shipped = pipe.config
    duration = pipe.spectrogram_params.duration_s(pipe.image_size[0])
    times: dict[str, list[tuple[float, float]]] = {label: [] for label, *_ in SETTINGS}

    def run(setting, prompt: str, seed: int) -> tuple[float, float]:
        _label, sampler, steps, parallel, min_timestep = setting
        pipe.config = dataclasses.replace(shipped, sampler=sampler, num_inference_steps=steps,
                                          cpu_parallel_guidance=parallel, cpu_threads=1,
                                          guidance_min_timestep=min_timestep)
        t0 = time.perf_counter()
        image = pipe.text_to_image(prompt, seed=seed, num_inference_steps=steps)
        t1 = time.perf_counter()
        converter.waveform_from_image(image, generator=torch.Generator().manual_seed(seed))
        return t1 - t0, time.perf_counter() - t1

    for setting in SETTINGS:
        run(setting, "warm-up", 0)
    for i in range(args.prompts):
        for setting in SETTINGS:
            times[setting[0]].append(run(setting, f"a lively tune with piano and drums, take {i} of {setting[0]}", i))
    pipe.config = shipped

    base = statistics.median(a + b for a, b in times[SETTINGS[0][0]])
    print(f"model {args.model}, {duration:.2f} s clips, {args.prompts} prompts per setting, "
          f"{args.threads} process threads; shipped: {shipped.sampler} {shipped.num_inference_steps} steps, "
          f"guided on t >= {shipped.guidance_min_timestep}")
    print(f"{'setting':<28}{'s/clip':>8}{'RTF':>7}{'image s':>9}{'audio s':>9}{'speed':>7}")
    for label, *_ in SETTINGS:
        total = statistics.median(a + b for a, b in times[label])
        image = statistics.median(a for a, _ in times[label])
        audio = statistics.median(b for _, b in times[label])
        print(f"{label:<28}{total:>8.3f}{total / duration:>7.3f}{image:>9.3f}{audio:>9.3f}{base / total:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
