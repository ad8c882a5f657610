"""Benchmark: do continuations hold together at their junctions? Continuation against clips made apart.

    python bench/bench_continuation.py                      # the shipped model, 3 held-out inputs, 20 s each
    python bench/bench_continuation.py --seconds 30 --model riffusion-small-v1

Each input is a 10 s excerpt of held-out music (``bench/music-held-out``, else ``bench/music``) from 30 s
in; it is followed by ``--seconds`` of new music made four ways, all level-matched to the input's end and
joined with the same crossfade:

* ``continuation``: :func:`riffusion.continuation.continue_audio` as shipped (the context's last bars
  repeated under the new part, then denoised; the context kept by the mask);
* ``outpaint from noise``: the same with ``denoising=1.0`` (masking alone);
* ``independent clips``: text-to-audio clips of the same prompt and seeds drawn apart (on the input's beat
  grid for a rhythm model), concatenated;
* ``interpolation``: an interpolation run of the prompt from seed to seed + 1 from the default seed loop,
  as ``riffusion interpolate`` makes it, concatenated.

The seam statistic: short-time spectra (46 ms Hann window, quarter hop) of the output; the relative
spectral flux ``||S[t+1] - S[t]|| / max(||S[t]||, ||S[t+1]||)`` of each frame pair; the largest flux in a
window of frames around each junction (the crossfade and one analysis window either side) against the
largest flux of every same-sized window of the same output away from the junctions. Reported: the median
over junctions of the ratio to the median window (dB; 0 dB: a junction changes no more than the music
does anywhere) and of its percentile among the windows (50: typical; 100: the biggest change in the piece).
That one hears clicks and jumps; a second one hears the music change: the level-free distance between the
mean log-mel spectra of the second before and the second after each junction, as a percentile among the
same distance at every other point of the output (``change pct``).
Also the tempo the new part keeps (the estimated tempo of the output's new part against the input's, in
percent, octave errors folded) and its timbre distance (mean log-mel spectrum of the new part's first 5 s
against the input's last 5 s, dB RMS). Prompts were fixed before any output was heard.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import dataclasses
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
# (file name in the held-out set, prompt): prompts chosen before looking at or hearing the outputs
INPUTS = (
    ("race1-jt.ogg", "upbeat electronic dance music with synth bass"),
    ("forest_forest2.ogg", "acoustic folk guitar and flute"),
    ("calmrace-ks.ogg", "jazz piano trio with brushed drums"),
)
EXCERPT_START_S, EXCERPT_S = 30.0, 10.0
WINDOW_MS = 46.0


def music_file(name: str) -> Path:
    for folder in (ROOT / "music-held-out", ROOT / "music"):
        found = sorted(folder.glob(f"**/{name}"))
        if found:
            return found[0]
    fallback = sorted((ROOT / "music-held-out").glob("**/*.ogg")) or sorted((ROOT / "music").glob("**/*.ogg"))
    if not fallback:
        raise SystemExit("no music under bench/music-held-out or bench/music (make test fetches it)")
    return fallback[hash(name) % len(fallback)]


def flux(x: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """Relative spectral flux of each frame pair of mono ``x``, and the hop in samples."""
    win = int(round(WINDOW_MS / 1000 * rate))
    hop = win // 4
    spec = torch.stft(torch.from_numpy(np.ascontiguousarray(x)), n_fft=win, hop_length=hop,
                      window=torch.hann_window(win), center=False, return_complex=True).abs()
    change = torch.linalg.vector_norm(spec[:, 1:] - spec[:, :-1], dim=0)
    level = torch.linalg.vector_norm(spec, dim=0)
    return (change / (torch.maximum(level[:-1], level[1:]) + 1e-9)).numpy(), hop


def seam_statistics(waveform: np.ndarray, rate: int, seams: list[tuple[float, float]], *,
                    start_s: float) -> tuple[list[float], list[float]]:
    """Per junction (crossfade start, end in seconds): its largest flux against the same output's other
    windows of the same size after ``start_s`` (dB ratio to their median, percentile)."""
    values, hop = flux(waveform.mean(0), rate)
    win = int(round(WINDOW_MS / 1000 * rate))
    spans = [(max(0, int((a * rate - win) // hop)), int(math.ceil((b * rate + win) / hop))) for a, b in seams]
    size = max(hi - lo for lo, hi in spans)
    busy = np.zeros(values.size, dtype=bool)
    for lo, hi in spans:
        busy[max(0, lo - size) : hi + size] = True
    first = int(start_s * rate // hop)
    others = [values[i : i + size].max() for i in range(first, values.size - size, max(1, size // 2))
              if not busy[i : i + size].any()]
    typical = float(np.median(others))
    ratios, percentiles = [], []
    for lo, hi in spans:
        peak = float(values[lo:hi].max())
        ratios.append(20 * math.log10(peak / typical))
        percentiles.append(100.0 * float(np.mean(np.asarray(others) < peak)))
    return ratios, percentiles


def section_change(waveform: np.ndarray, rate: int, seams: list[tuple[float, float]]) -> list[float]:
    """Per junction, the percentile of its sound change among the same output's other points: the level-free
    distance between the mean log-mel spectra of the second before and the second after a point (every
    0.25 s, those within 1 s of a junction left out)."""
    import librosa

    hop = 512
    mel = librosa.feature.melspectrogram(y=waveform.mean(0), sr=rate, n_mels=64, fmax=10000, hop_length=hop)
    logmel = 10 * np.log10(mel + 1e-10)
    width = int(round(rate / hop))

    def change(frame: int) -> float:
        a, b = logmel[:, frame - width : frame].mean(1), logmel[:, frame : frame + width].mean(1)
        return float(np.sqrt(np.mean(((a - a.mean()) - (b - b.mean())) ** 2)))

    centres = [int(round((a + b) / 2 * rate / hop)) for a, b in seams]
    step = max(1, width // 4)
    others = [change(f) for f in range(width, logmel.shape[1] - width, step)
              if all(abs(f - c) > width for c in centres)]
    return [100.0 * float(np.mean(np.asarray(others) < change(c))) for c in centres
            if width <= c <= logmel.shape[1] - width]


def tempo_error(pipe, waveform: np.ndarray, rate: int, split: int, *, reference: float) -> float:
    from riffusion.audio import match_channels, resample
    from riffusion.image import image_from_waveform
    from riffusion.rhythm import estimate_beat_grid

    params = pipe.spectrogram_params
    x = match_channels(resample(waveform[:, split:], rate, params.sample_rate), params.num_channels)
    pixels = np.asarray(image_from_waveform(x, params.sample_rate, params).convert("RGB").getchannel("R"), np.float32)
    grid = estimate_beat_grid(pixels, column_s=params.hop_length / params.sample_rate)
    if grid is None:
        return float("nan")
    ratio = grid.bpm / reference
    ratio = min((ratio * f for f in (0.5, 2 / 3, 1.0, 1.5, 2.0)), key=lambda r: abs(math.log(r)))
    return 100 * abs(ratio - 1)


def timbre_distance(waveform: np.ndarray, rate: int, split: int) -> float:
    import librosa

    def profile(x):
        mel = librosa.feature.melspectrogram(y=x.mean(0), sr=rate, n_mels=64, fmax=10000)
        return 10 * np.log10(mel.mean(axis=1) + 1e-10)

    five = int(5 * rate)
    a, b = profile(waveform[:, split - five : split]), profile(waveform[:, split : split + five])
    return float(np.sqrt(np.mean(((a - a.mean()) - (b - b.mean())) ** 2)))


def level_matched(clips: list[np.ndarray], reference: np.ndarray) -> list[np.ndarray]:
    target = float(np.sqrt(np.mean(reference ** 2)))
    return [c * (target / max(float(np.sqrt(np.mean(c ** 2))), 1e-9)) for c in clips]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model id (default: the shipped model)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds added to each input (default: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from riffusion.audio import match_channels, read_audio, resample
    from riffusion.continuation import DEFAULT_CROSSFADE_S, continue_audio, input_beat_grid
    from riffusion.datatypes import InferenceInput, PromptInput
    from riffusion.generation import concatenate, generate_clips, interpolation_inputs
    from riffusion.loading import load_pipeline

    pipe = load_pipeline(args.model, device="cpu")
    params = pipe.spectrogram_params
    fade = DEFAULT_CROSSFADE_S
    methods = ("continuation", "outpaint from noise", "independent clips", "interpolation")
    rows: dict[str, list[tuple[list[float], list[float], float, float, float]]] = {m: [] for m in methods}
    for name, prompt in INPUTS:
        path = music_file(name)
        audio, rate = read_audio(path)
        x = audio[:, int(EXCERPT_START_S * rate) : int((EXCERPT_START_S + EXCERPT_S) * rate)]
        split = x.shape[-1]
        for method in methods:
            started = time.perf_counter()
            if method in ("continuation", "outpaint from noise"):
                result = continue_audio(pipe, x, rate, prompt=prompt, seconds=args.seconds, seed=args.seed,
                                        **({"denoising": 1.0} if method != "continuation" else {}))
                out, grid = result.waveform, result.grid
                seams = [(a, b) for a, b in result.crossfades_s if b < out.shape[-1] / rate - 1.0]
            else:
                grid = input_beat_grid(pipe, x, rate)
                duration = params.duration_s(pipe.image_size[0])
                count = int(math.ceil(args.seconds / (duration - fade))) + 1
                if method == "independent clips":
                    inputs = []
                    for k in range(count):
                        end = PromptInput(prompt=prompt, seed=args.seed + k, guidance=pipe.default_guidance,
                                          denoising=1.0)
                        rhythm = grid if pipe.has_rhythm_input and grid is not None else None
                        inputs.append(InferenceInput(start=end, end=end, alpha=0.0, seed_image_id=None, rhythm=rhythm,
                                                     num_inference_steps=pipe.default_num_inference_steps))
                else:
                    start = PromptInput(prompt=prompt, seed=args.seed, guidance=pipe.default_guidance,
                                        denoising=pipe.default_denoising)
                    inputs = interpolation_inputs(start, dataclasses.replace(start, seed=args.seed + 1), num_clips=count,
                                                  num_inference_steps=pipe.default_num_inference_steps)
                clips = [c.waveform for c in generate_clips(pipe, inputs, phase="default", apply_filters=False)]
                clips = [match_channels(resample(c, params.sample_rate, rate), x.shape[0]) for c in clips]
                clips = level_matched(clips, x[:, -int(5 * rate):])
                out = concatenate([x, *clips], rate, crossfade_s=fade)[:, : split + int(args.seconds * rate)]
                joins, at = [], split / rate
                for c in clips:
                    joins.append((at - fade, at))
                    at += c.shape[-1] / rate - fade
                seams = [(a, b) for a, b in joins if b < out.shape[-1] / rate - 1.0]
            elapsed = time.perf_counter() - started
            ratios, percentiles = seam_statistics(out, rate, seams, start_s=0.0)
            reference = grid.bpm if grid is not None else float("nan")
            sections = section_change(out, rate, seams)
            rows[method].append((ratios, percentiles, tempo_error(pipe, out, rate, split, reference=reference),
                                 timbre_distance(out, rate, split), elapsed, sections))
            print(f"{path.name:<28}{method:<22}junctions {len(ratios):>2}  seam {statistics.median(ratios):+6.1f} dB "
                  f"p{statistics.median(percentiles):>5.1f}  change p{statistics.median(sections):>5.1f}  "
                  f"tempo off {rows[method][-1][2]:5.1f} %  timbre {rows[method][-1][3]:5.2f} dB  {elapsed:6.1f} s",
                  flush=True)

    print(f"\nmodel {pipe.model_id}, {len(INPUTS)} inputs x {args.seconds:g} s added, crossfade {fade:g} s, seed {args.seed}")
    print(f"{'method':<22}{'seam dB (median)':>17}{'seam pct':>10}{'worst dB':>10}{'change pct':>12}"
          f"{'tempo off %':>12}{'timbre dB':>10}{'s per s':>9}")
    for method in methods:
        ratios = [r for row in rows[method] for r in row[0]]
        pct = [p for row in rows[method] for p in row[1]]
        tempo = [row[2] for row in rows[method] if not math.isnan(row[2])]
        change = [c for row in rows[method] for c in row[5]]
        print(f"{method:<22}{statistics.median(ratios):>+17.1f}{statistics.median(pct):>10.0f}{max(ratios):>+10.1f}"
              f"{statistics.median(change):>12.0f}"
              f"{statistics.median(tempo) if tempo else float('nan'):>12.1f}"
              f"{statistics.median(row[3] for row in rows[method]):>10.2f}"
              f"{statistics.median(row[4] for row in rows[method]) / args.seconds:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
