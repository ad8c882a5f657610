"""Measure a small model against its targets: speed, prompt steering, interpolation smoothness.

``python -m riffusion.training.evaluation --model riffusion-small-v2 --seeds 20 [--out results.json]``

* **Real-time factor**: wall time from a prompt to a 5.1 s waveform (text encoding, diffusion, inverse mel,
  phase reconstruction) divided by the clip's duration, median over runs after one warm-up generation, on
  the current machine.
* **Steering**: for pairs of prompts *not in the training captions* whose sound should differ in a
  weight-free statistic (spectral centroid, onset rate, tempo), the share of seeds for which the statistic
  moves the right way between the two prompts (same seed for both).
* **Interpolation smoothness**: mean absolute difference (in dB of the decoded mel magnitudes) between
  successive images along an alpha sweep, for three sweeps between unrelated prompts, over the model's
  first seed loop at the model's own jam denoising (``default_denoising``, what the jam sends); reported per sweep
  and averaged: the mean step and the largest step over the mean (1.0 is perfectly even), with the worst
  sweep's ratio beside the average. Those sweeps change prompt and seed at once; the jam never does, so the
  same sweeps are also measured as the jam makes its transitions (a prompt reached at the current seed; a
  seed step at one prompt): ``jam_prompt_change_max_over_mean`` and ``jam_seed_step_max_over_mean``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import typing as T

import numpy as np
import torch

# (statistic, prompt where it should be LOWER, prompt where it should be HIGHER)
STEERING_PAIRS = (
    ("centroid_hz", "a deep rumbling bass guitar groove", "a bright flute solo high in the sky"),
    ("centroid_hz", "low cello and tuba", "tinkling glockenspiel and piccolo"),
    ("onset_rate", "a calm sustained ambient pad", "energetic drum kit with busy hi-hats"),
    ("tempo_bpm", "a very slow sleepy lullaby", "a fast frantic dance track at top speed"),
    # the same prompts and audio, the tempo's octave chosen by onset rate: on rendered grooves of known tempo
    # this orders truly slow and fast clips far more often than the prior's octave (bench/bench_tempo.py)
    ("tempo_bpm_onset_octave", "a very slow sleepy lullaby", "a fast frantic dance track at top speed"),
    # and their pace as events per second, the one weight-free statistic of the three free of octave errors
    ("onset_rate", "a very slow sleepy lullaby", "a fast frantic dance track at top speed"),
)


# (start prompt, start seed, end prompt, end seed) of the alpha sweeps; none of the prompts is a training caption
INTERPOLATION_SWEEPS = (
    ("a gentle acoustic guitar ballad", 11, "a loud electronic dance beat", 12),
    ("a calm piano piece", 21, "heavy metal guitars", 22),
    ("a slow string quartet", 31, "a funky bass groove with drums", 32),
)


def _statistic(name: str, waveform: np.ndarray, sample_rate: int) -> float:
    from riffusion.dataset import features

    if name == "centroid_hz":
        return features.spectral_centroid(waveform, sample_rate)
    if name == "onset_rate":
        return features.onset_rate(waveform, sample_rate)
    if name == "tempo_bpm":
        return features.estimate_tempo(waveform, sample_rate)
    if name == "tempo_bpm_onset_octave":
        return features.estimate_tempo(waveform, sample_rate, octave="onset-rate")
    raise ValueError(f"unknown statistic {name!r}")


def alpha_sweep(pipe, start: tuple[str, int], end: tuple[str, int], *, init_image=None, denoising: float = 1.0,
                guidance: float, steps: int, alphas: T.Sequence[float] = tuple(np.linspace(0, 1, 11))) -> dict[str, T.Any]:
    """How evenly a clip changes along alpha from ``start`` to ``end`` (each a (prompt, seed)), as
    :meth:`riffuse_batch` makes the clips of one sweep.

    Returns the step between successive clips (mean absolute difference of their mel magnitudes in dB), its
    mean, the largest step over the mean (1.0: perfectly even), the distance between the end clips, and how
    far the middle clip is from a plain mix of the end clips' spectrograms (the mean of their dB images), as a
    share of the end clips' distance: near 0 a transition is a cross-fade of its ends, larger it makes music
    of its own on the way.
    """
    from riffusion.datatypes import InferenceInput, PromptInput
    from riffusion.image import spectrogram_from_image

    params = pipe.spectrogram_params
    a = PromptInput(prompt=start[0], seed=start[1], denoising=denoising, guidance=guidance)
    b = PromptInput(prompt=end[0], seed=end[1], denoising=denoising, guidance=guidance)
    images = pipe.riffuse_batch([(InferenceInput(start=a, end=b, alpha=float(x), num_inference_steps=steps), init_image, None)
                                 for x in alphas])
    mels = [20 * np.log10(spectrogram_from_image(im, power=params.power_for_image, max_value=1.0) + 1e-5) for im in images]
    diffs = [float(np.mean(np.abs(y - x))) for x, y in zip(mels, mels[1:])]
    ends = float(np.mean(np.abs(mels[-1] - mels[0])))
    middle = mels[len(mels) // 2]
    return {"start": start[0], "end": end[0], "start_seed": start[1], "end_seed": end[1],
            "step_db": diffs, "mean_step_db": float(np.mean(diffs)),
            "max_over_mean": float(np.max(diffs) / max(np.mean(diffs), 1e-9)), "endpoint_distance_db": ends,
            "middle_from_mix": float(np.mean(np.abs(middle - (mels[0] + mels[-1]) / 2))) / max(ends, 1e-9)}


def evaluate(model: str, *, seeds: int = 20, steps: T.Optional[int] = None, guidance: T.Optional[float] = None,
             phase: str = "default", rtf_runs: int = 7, log: T.Callable[[str], None] = print) -> dict[str, T.Any]:
    """Run the three measurements on ``model`` (a folder or shipped name) and return a JSON-able dict."""
    from riffusion.small import load_small_pipeline
    from riffusion.image import waveform_from_image

    pipe = load_small_pipeline(model)
    params = pipe.spectrogram_params
    steps = steps or pipe.default_num_inference_steps
    guidance = pipe.default_guidance if guidance is None else guidance

    def audio(image, seed: int) -> np.ndarray:
        return waveform_from_image(image, params, phase=phase, generator=torch.Generator().manual_seed(seed))

    generated: dict[tuple[str, int], np.ndarray] = {}  # pairs that share prompts share their audio

    def prompt_audio(prompt: str, seed: int) -> np.ndarray:
        if (prompt, seed) not in generated:
            image = pipe.text_to_image(prompt, seed=seed, num_inference_steps=steps, guidance=guidance)
            generated[prompt, seed] = audio(image, seed)
        return generated[prompt, seed]

    # warm-up: the first generation of a shape pays one-off costs (the parallel-guidance trace, ~0.75 s;
    # oneDNN kernel selection), which a running jam or server has paid long before
    audio(pipe.text_to_image("warm-up", seed=0, num_inference_steps=steps, guidance=guidance), 0)

    # 1. Real-time factor, end to end, with a new prompt each run (no embedding cache hits).
    times = []
    duration = params.duration_s(pipe.image_size[0])
    for i in range(rtf_runs):
        t0 = time.perf_counter()
        image = pipe.text_to_image(f"an upbeat jazz tune number {i}", seed=i, num_inference_steps=steps, guidance=guidance)
        audio(image, i)
        times.append(time.perf_counter() - t0)
    rtf = statistics.median(times) / duration
    log(f"text->audio: median {statistics.median(times):.3f} s for {duration:.2f} s of audio (RTF {rtf:.3f})")

    # 2. Steering.
    steering = []
    for stat, low_prompt, high_prompt in STEERING_PAIRS:
        right = 0
        lows, highs = [], []
        for seed in range(seeds):
            lo = _statistic(stat, prompt_audio(low_prompt, seed), params.sample_rate)
            hi = _statistic(stat, prompt_audio(high_prompt, seed), params.sample_rate)
            lows.append(lo)
            highs.append(hi)
            right += hi > lo
        row = {"statistic": stat, "lower": low_prompt, "higher": high_prompt, "seeds": seeds,
               "share_right": right / seeds, "median_lower": float(np.median(lows)),
               "median_higher": float(np.median(highs))}
        steering.append(row)
        log(f"steering {stat}: {right}/{seeds} seeds right ({row['median_lower']:.1f} -> {row['median_higher']:.1f})")

    # 3. Interpolation smoothness along alpha sweeps at the model's own jam denoising (img2img from the
    #    model's first seed image when it has one, following that loop's rhythm where the model takes one, as
    #    the jam does). One sweep's largest step is mostly chance (where along alpha the model happens
    #    to switch), so several sweeps are measured and summarised.
    from PIL import Image

    init = None
    if pipe.path is not None and (pipe.path / "seed_images" / "og_beat.png").is_file():
        init = Image.open(pipe.path / "seed_images" / "og_beat.png").convert("RGB")
    alphas = np.linspace(0, 1, 11)
    denoising = pipe.default_denoising if init is not None else 1.0

    def sweep(start_prompt: str, start_seed: int, end_prompt: str, end_seed: int) -> dict[str, T.Any]:
        return alpha_sweep(pipe, (start_prompt, start_seed), (end_prompt, end_seed), init_image=init,
                           denoising=denoising, guidance=guidance, steps=steps, alphas=alphas)

    sweeps = [sweep(*ends) for ends in INTERPOLATION_SWEEPS]
    ratios = [s["max_over_mean"] for s in sweeps]
    smooth = {"alphas": [round(float(a), 2) for a in alphas], "sweeps": sweeps,
              "mean_step_db": float(np.mean([s["mean_step_db"] for s in sweeps])),
              "max_over_mean": float(np.mean(ratios)), "worst_max_over_mean": float(np.max(ratios)),
              "endpoint_distance_db": float(np.mean([s["endpoint_distance_db"] for s in sweeps])),
              "middle_from_mix": float(np.mean([s["middle_from_mix"] for s in sweeps])),
              "img2img_seed": "og_beat" if init is not None else None, "denoising": denoising}
    log(f"interpolation over {len(sweeps)} sweeps: mean step {smooth['mean_step_db']:.2f} dB, max/mean "
        f"{smooth['max_over_mean']:.2f} (worst {smooth['worst_max_over_mean']:.2f}; "
        f"{', '.join(f'{r:.2f}' for r in ratios)}), endpoints {smooth['endpoint_distance_db']:.2f} dB apart, the middle "
        f"clip {smooth['middle_from_mix']:.2f} of that from their mix")
    # The jam never changes prompt and seed at once (riffusion/web/sequence.js): a typed prompt is reached at
    # the current seed, and a prompt left alone walks from one seed to the next. The same sweeps in those
    # two shapes are what a listener hears.
    for name, shape in (("prompt_change", lambda sp, ss, ep, es: (sp, ss, ep, ss)),
                        ("seed_step", lambda sp, ss, ep, es: (sp, ss, sp, ss + 1))):
        ratios = [sweep(*shape(*ends))["max_over_mean"] for ends in INTERPOLATION_SWEEPS]
        smooth[f"jam_{name}_max_over_mean"] = float(np.mean(ratios))
        log(f"the jam's {name.replace('_', ' ')}s: max/mean {np.mean(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})")
    return {"model": model, "steps": steps, "guidance": guidance, "phase": phase, "threads": torch.get_num_threads(),
            "rtf": {"median_s": statistics.median(times), "clip_s": duration, "rtf": rtf, "runs_s": times},
            "steering": steering, "interpolation": smooth}


def main(argv: T.Optional[T.Sequence[str]] = None) -> int:
    from riffusion.small import DEFAULT_SMALL_MODEL

    parser = argparse.ArgumentParser(prog="python -m riffusion.training.evaluation", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_SMALL_MODEL)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    for name in ("seeds", "steps", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    if args.guidance is not None and not args.guidance >= 0:
        parser.error(f"--guidance must be >= 0, got {args.guidance}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        results = evaluate(args.model, seeds=args.seeds, steps=args.steps, guidance=args.guidance,
                           log=lambda m: print(m, file=sys.stderr))
    except (LookupError, ValueError, OSError) as error:  # a bad --model: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = json.dumps(results, indent=2)
    if args.out:
        from riffusion.files import atomic_path

        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
