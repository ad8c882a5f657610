"""Benchmark: spectrogram image -> audio, the original method against ours, on real music.

    scripts/fetch_music.sh            # once: openly licensed Debian game music into bench/music/
    python bench/bench_phase.py       # table of seconds per clip, speed ratio, mel spectral convergence

Every method runs in this one process on the same inputs: 512 x 512 mono spectrogram images
(riffusion-model-v1's format: 5.11 s, 0-10 kHz, 8-bit, power 0.25) made from clips of the tracks. The
timed span is image -> waveform: decoding the image, the inverse mel (riffusion.spectral.mel_to_linear,
precomputed least-squares) and the phase method, one clip at a time.

Baseline, "original (32 GL)": what the original Riffusion does on current torch: least-squares inverse
mel, then torchaudio's GriffinLim as configured there (32 iterations, momentum 0.99, ``rand_init``:
complex uniform [0, 1) initial spectrum) written out with torch.stft / torch.istft.

Quality, "mel SC": mel spectral convergence of the audio against the image it came from
(riffusion.metrics.mel_consistency; dB, lower is better). "gain" is the baseline's mel SC minus the
method's, per clip (dB, higher is better). "SC vs orig" compares the STFT magnitude (0-10 kHz) with the
music the image was made from (scale-invariant, dB). "heard dB" is the mel SC of the audio after the
loudness post-filter that the CLI, the server and the jam apply (riffusion.audio.normalize_loudness: RMS
-12 dBFS, peak -0.1 dBFS), the same filter for every row. All figures are medians over clips.

"oracle" rows are not methods: they are given the true STFT magnitude of the music (which an image does
not hold) and run "pghi+griffin-lim" on it, to show how far phase retrieval itself gets when the inverse
mel is not to blame (``--oracle`` sets their iteration counts).

With ``--e2e``: seconds per clip from text to an audio file, with the ``tiny-random`` pipeline (and the
shipped model when one is installed), if riffusion.loading and riffusion.generation are available.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from riffusion import image as codec  # noqa: E402
from riffusion import metrics, reconstruction, spectral  # noqa: E402
from riffusion.audio import normalize_loudness, read_audio  # noqa: E402
from riffusion.spectrogram_params import SpectrogramParams  # noqa: E402

PARAMS = SpectrogramParams()
CLIP_SAMPLES = PARAMS.num_samples(512)  # 225351 samples: 512 image columns
BASELINE = "original (32 GL)"


def find_tracks(music_dir: Path) -> list[Path]:
    return sorted(p for p in music_dir.rglob("*") if p.suffix.lower() in (".ogg", ".flac", ".wav", ".mp3"))


def load_clips(tracks: list[Path], count: int) -> list[tuple[str, np.ndarray]]:
    """``count`` mono 5.11 s clips at 44.1 kHz, from tracks spread over the sorted list, skipping silence."""
    clips = []
    if count > 1:
        picks = [tracks[round(i * (len(tracks) - 1) / (count - 1))] for i in range(count)]
    else:
        picks = tracks[:1]
    for path in dict.fromkeys(picks):  # unique, in order
        waveform, _ = read_audio(path, sample_rate=PARAMS.sample_rate, mono=True)
        for fraction in (0.35, 0.2, 0.5, 0.65):
            start = int(fraction * max(0, waveform.shape[1] - CLIP_SAMPLES))
            clip = waveform[:, start : start + CLIP_SAMPLES]
            if clip.shape[1] == CLIP_SAMPLES and float(np.sqrt(np.mean(clip**2))) > 0.01:
                clips.append((f"{path.parent.name}/{path.name}@{start / PARAMS.sample_rate:.0f}s", clip))
                break
    return clips


def image_of(clip: np.ndarray):
    mel = spectral.waveform_to_mel(clip * 32768.0, PARAMS).numpy()
    return codec.image_from_spectrogram(mel, power=PARAMS.power_for_image)


def decode(image) -> torch.Tensor:
    mel = codec.spectrogram_from_image(image, power=PARAMS.power_for_image, max_value=codec.DEFAULT_MAX_VALUE)
    return torch.from_numpy(mel)


def baseline(image, generator: torch.Generator, original: np.ndarray | None = None) -> torch.Tensor:
    """The original pipeline on current torch: inverse mel, then torchaudio-style fast Griffin-Lim."""
    linear = spectral.mel_to_linear(decode(image), PARAMS)
    n_fft, hop, win = PARAMS.n_fft, PARAMS.hop_length, PARAMS.win_length
    window = torch.hann_window(win)
    # torchaudio.transforms.GriffinLim(rand_init=True): complex uniform [0, 1) angles (not normalised)
    angles = torch.complex(torch.rand(linear.shape, generator=generator), torch.rand(linear.shape, generator=generator))
    length = hop * (linear.shape[-1] - 1)
    previous = torch.tensor(0.0)
    momentum = 0.99 / 1.99
    for _ in range(PARAMS.num_griffin_lim_iters):
        inverse = torch.istft(linear * angles, n_fft, hop, win, window, center=True, length=length)
        rebuilt = torch.stft(inverse, n_fft, hop, win, window, center=True, pad_mode="reflect", return_complex=True)
        angles = rebuilt - previous * momentum
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return torch.istft(linear * angles, n_fft, hop, win, window, center=True, length=length)


def ours(name: str, n_iter, reduced_rate: bool = True):
    method = reconstruction.PhaseMethod(name).with_n_iter(n_iter)

    def run(image, generator: torch.Generator, original: np.ndarray | None = None) -> torch.Tensor:
        return spectral.mel_to_waveform(decode(image), PARAMS, phase=method, generator=generator,
                                        reduced_rate=reduced_rate)

    return run


def oracle(n_iter: int):
    """Not a method (it needs the music the image came from): the true STFT magnitude, at the inverse mel's
    level, through ``"pghi+griffin-lim"``. What phase retrieval reaches when the magnitude is not the
    problem: a ceiling for every method that starts from an inverse mel."""

    def run(image, generator: torch.Generator, original: np.ndarray | None = None) -> torch.Tensor:
        estimate = spectral.mel_to_linear(decode(image), PARAMS)
        true = spectral.waveform_to_stft_magnitude(original, PARAMS)
        true = true * (estimate.sum() / true.sum().clamp_min(1e-30))
        return reconstruction.reconstruct_waveform(true, n_fft=PARAMS.n_fft, hop_length=PARAMS.hop_length,
                                                   win_length=PARAMS.win_length,
                                                   phase=reconstruction.PhaseMethod("pghi+griffin-lim", n_iter))

    return run


def sc_vs_original(audio: torch.Tensor, original: np.ndarray) -> float:
    top = int(PARAMS.max_frequency * PARAMS.n_fft / PARAMS.sample_rate) + 1
    a = spectral.waveform_to_stft_magnitude(audio.reshape(1, -1), PARAMS)[:, :top]
    b = spectral.waveform_to_stft_magnitude(original, PARAMS)[:, :top]
    return metrics.spectral_convergence(a, b, scale_invariant=True)


def bench_image_to_audio(clips, methods, seed: int, repeats: int) -> dict:
    images = [image_of(clip) for _, clip in clips]
    for _, fn in methods:  # warm-up: caches (inverse mel, windows), allocator, FFT plans
        fn(images[0], torch.Generator().manual_seed(seed), original=clips[0][1])
    results = {name: {"seconds": [], "mel_sc": [], "sc_orig": [], "mel_sc_heard": []} for name, _ in methods}
    inverse_mel = []
    for index, ((label, clip), image) in enumerate(zip(clips, images)):
        t0 = time.perf_counter()
        spectral.mel_to_linear(decode(image), PARAMS)
        inverse_mel.append(time.perf_counter() - t0)
        for name, fn in methods:
            best = math.inf
            for _ in range(repeats):
                generator = torch.Generator().manual_seed(seed + index)
                t0 = time.perf_counter()
                audio = fn(image, generator, original=clip)
                best = min(best, time.perf_counter() - t0)
            row = results[name]
            row["seconds"].append(best)
            row["mel_sc"].append(metrics.mel_consistency(audio.reshape(1, -1), image, PARAMS))
            row["sc_orig"].append(sc_vs_original(audio, clip))
            heard = normalize_loudness(audio.reshape(1, -1).numpy(), PARAMS.sample_rate)
            row["mel_sc_heard"].append(metrics.mel_consistency(heard, image, PARAMS))
        print(f"  clip {index + 1}/{len(clips)} {label}", file=sys.stderr, flush=True)
    base = results[BASELINE]
    for name, row in results.items():
        row["speedup"] = [b / s for b, s in zip(base["seconds"], row["seconds"])]
        row["gain_db"] = [b - m for b, m in zip(base["mel_sc"], row["mel_sc"])]
    return {"methods": results, "inverse_mel_seconds": inverse_mel}


def print_table(report: dict, clips: int) -> None:
    med = statistics.median
    rows = report["methods"]
    print(
        f"image -> audio, 512x512 mono, {clips} clips of real music, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; medians"
    )
    width = max(len(name) for name in rows)
    header = f"{'method':<{width}} {'s/clip':>7} {'speed x':>8} {'mel SC dB':>10} {'gain dB':>8} {'SC vs orig dB':>14} {'heard dB':>9}"
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(
            f"{name:<{width}} {med(row['seconds']):>7.3f} {med(row['speedup']):>8.1f} {med(row['mel_sc']):>10.1f} "
            f"{med(row['gain_db']):>8.1f} {med(row['sc_orig']):>14.1f} {med(row['mel_sc_heard']):>9.1f}"
        )
    print(f"(inverse mel alone, included above: {med(report['inverse_mel_seconds']):.3f} s/clip)")
    default = next(row for name, row in rows.items() if name.startswith("default"))
    speed, gain = med(default["speedup"]), med(default["gain_db"])
    verdict = "met" if speed >= 10 and gain >= 10 else "not met"
    print(f"target (default >= 10x faster and >= 10 dB better mel SC than the baseline): {verdict} "
          f"({speed:.1f}x, {gain:+.1f} dB)")


def bench_end_to_end(models: list[str], phases: list[str], steps: int, repeats: int) -> dict:
    """Seconds per clip from text to an audio file, or a reason it was skipped."""
    try:
        from riffusion.audio import write_audio
        from riffusion.datatypes import InferenceInput, PromptInput
        from riffusion.generation import generate_clip
        from riffusion.loading import DEFAULT_MODEL, load_pipeline
    except ImportError as exc:
        return {"skipped": f"pipeline not available ({exc})"}
    out: dict = {}
    for model in dict.fromkeys([*models, DEFAULT_MODEL]):
        try:
            pipeline = load_pipeline(model, device="cpu")
        except Exception as exc:  # noqa: BLE001 - a benchmark reports what it could not load and goes on
            out[model] = {"skipped": (str(exc).splitlines() or [type(exc).__name__])[0]}
            continue
        for phase_name in phases:
            times = []
            with tempfile.TemporaryDirectory() as tmp:
                for i in range(repeats + 1):  # first run is warm-up
                    inputs = InferenceInput(
                        start=PromptInput(prompt="jazz piano", seed=42 + i),
                        end=PromptInput(prompt="jazz piano", seed=43 + i),
                        alpha=0.5,
                        num_inference_steps=steps,
                    )
                    t0 = time.perf_counter()
                    clip = generate_clip(pipeline, inputs, phase=phase_name)
                    write_audio(Path(tmp) / f"clip{i}.wav", clip.waveform, clip.sample_rate)
                    if i:
                        times.append(time.perf_counter() - t0)
            key = f"{model} / phase {phase_name}"
            out[key] = {"seconds_per_clip": statistics.median(times), "steps": steps}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--music-dir", type=Path, default=REPO / "bench" / "music")
    parser.add_argument("--clips", type=int, default=12, help="number of clips (one per track)")
    parser.add_argument("--repeats", type=int, default=1, help="timing repeats per clip (best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, nargs="*", default=[8, 16, 32], help="GL iterations after PGHI")
    parser.add_argument("--mel-iters", type=int, nargs="*", default=[32, 64],
                        help="mel-constrained GL iterations of mel-griffin-lim (besides the default)")
    parser.add_argument("--oracle", type=int, nargs="*", default=[24, 96],
                        help="also these GL iterations from the TRUE magnitude (a ceiling, not a method; "
                        "none: off)")
    parser.add_argument("--e2e", action="store_true", help="also time text -> audio file end to end")
    parser.add_argument("--e2e-models", nargs="*", default=["tiny-random", "riffusion-small-v1"])
    parser.add_argument("--e2e-only", action="store_true", help="skip the image -> audio table")
    parser.add_argument("--e2e-steps", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)

    report: dict = {}
    if not args.e2e_only:
        tracks = find_tracks(args.music_dir)
        if not tracks:
            print(f"no music in {args.music_dir}: run scripts/fetch_music.sh first", file=sys.stderr)
            return 2
        clips = load_clips(tracks, args.clips)
        methods = [(BASELINE, baseline), ("griffin-lim (32)", ours("griffin-lim", None)), ("pghi", ours("pghi", 0))]
        methods += [(f"pghi+griffin-lim ({n})", ours("pghi+griffin-lim", n)) for n in args.iters]
        methods += [(f"mel-griffin-lim ({reconstruction.MEL_GL_WARMUP_ITERS} + {n})", ours("mel-griffin-lim", n))
                    for n in args.mel_iters]
        methods.append((f"default = {reconstruction.DEFAULT_METHOD} ({reconstruction.MEL_GL_WARMUP_ITERS} + {reconstruction.MEL_GL_ITERS})",
                        ours("default", None)))
        methods.append(("default at 44.1 kHz throughout", ours("default", None, reduced_rate=False)))
        methods += [(f"oracle |STFT| + pghi+griffin-lim ({n})", oracle(n)) for n in args.oracle]
        report = bench_image_to_audio(clips, methods, args.seed, args.repeats)
        report["clips"] = [label for label, _ in clips]
        print_table(report, len(clips))
    if args.e2e or args.e2e_only:
        report["end_to_end"] = bench_end_to_end(args.e2e_models, ["griffin-lim", "default"], args.e2e_steps, 2)
        print("\ntext -> audio file, end to end (cpu):")
        for model, row in report["end_to_end"].items() if "skipped" not in report["end_to_end"] else []:
            if "skipped" in row:
                print(f"  {model}: skipped ({row['skipped']})")
            else:
                print(f"  {model}: {row['seconds_per_clip']:.2f} s/clip ({row['steps']} steps)")
        if "skipped" in report["end_to_end"]:
            print(f"  skipped: {report['end_to_end']['skipped']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
