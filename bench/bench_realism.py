"""Benchmark: how close generated clips sound to real recordings, measured with weight-free audio features.

    scripts/fetch_music.sh --held-out                  # once: held-out recordings into bench/music-held-out/
    python bench/bench_realism.py                      # riffusion-small-v1, the default sizes (a few minutes)
    python bench/bench_realism.py --model riffusion-small-v1 --model path/to/model --seeds 8
    python bench/bench_realism.py --max-tracks 61 --clips-per-track 6     # every held-out track

What it measures. Every clip (5.1 s at 22.05 kHz, the small models' clip) becomes one feature vector of
55 weight-free measurements (:func:`clip_features`): the spectral envelope (16 log-mel band means and 8
coarse band standard deviations over time), spectral centroid, bandwidth, roll-off and flatness (mean
and spread), spectral contrast in 6 octave bands (Jiang et al., 2002), a 12-bin chroma (pitch classes) and
pulse statistics (onset rate, onset-strength level and spread, the autocorrelation peak of the onset
envelope between 30 and 240 BPM and its tempo). Clips are loudness-normalised first, so level alone
tells nothing. Features are standardised on the held-out recordings. A set of clips is then compared with
a reference set of recordings by:

* accuracy: a grouped, cross-validated two-sample classifier test (Lopez-Paz & Oquab, 2017): an L2
  logistic regression learns to tell the two sets apart; its balanced accuracy on held-out folds is 50 %
  when they are indistinguishable in these features and 100 % when every clip gives itself away. All
  clips of one track (recordings) or of one prompt (generated) stay in one fold, so it cannot win by
  recognising a track it has seen.
* Frechet: the Frechet distance between Gaussian fits of the two feature distributions, as FID (Heusel
  et al., 2017) and FAD (Kilgour et al., 2019) compute it, here on hand-made features. 0 for identical
  distributions; it has a positive bias that grows as the sets shrink, so compare rows of similar size.
* variety: mean pairwise feature distance within the set over that within the reference set (1.0: as
  varied as the recordings; well below 1: near-copies of each other).

Why: the model's own training loss says nothing about whether its clips sound like records, and listening
is not a number. Every figure is printed beside the same figure for references computed the same way:

* real A vs real B: two disjoint halves of the held-out recordings, split by track: the floor (what two
  samples of the same music give at this size);
* style vs style: one held-out package's music against the other's: what "different real music" gives;
* real A through format vs real B: half A turned into the model's spectrogram image and back to audio
  (``riffusion.image.image_from_waveform`` / ``waveform_from_image``, the default phase method): the best
  a perfect model in that format could reach;
* each ``--model`` (default riffusion-small-v1) vs real B: text to audio from noise at the model's own
  steps and guidance, on :data:`PROMPTS` (everyday music prompts, not training captions), ``--seeds``
  seeds each.

How to read the table: a model is as realistic as its format allows when its accuracy and Frechet
distance approach the "through format" row; closer to "real A vs real B" is better still. A model whose
Frechet distance is below "style vs style" is closer to the recordings than two real styles are to each
other. Variety well below 1.0 means the model repeats itself whatever the prompt.

The held-out recordings are Debian's supertux-data (music: GPL-2+) and extremetuxracer-data (GPL-2+),
which the training data (``riffusion.dataset.sources.GAME_MUSIC``) never uses.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import dataclasses
import platform
import sys
import time
import typing as T
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HELD_OUT_DIR = REPO / "bench" / "music-held-out"
AUDIO_SUFFIXES = (".ogg", ".flac", ".wav")

SAMPLE_RATE = 22050
CLIP_SECONDS = 5.1  # riffusion.small.SMALL_PARAMS.num_samples(256) / SAMPLE_RATE, checked in main()
N_FFT = 1024
HOP = 256

#: Everyday music requests, none of them a training caption, spread over styles, instruments and moods.
PROMPTS = (
    "a slow sad cello solo",
    "a marching brass band",
    "upbeat funk with slap bass",
    "gentle acoustic guitar folk song",
    "heavy metal with distorted guitars and double kick drums",
    "lofi hip hop beat to study to",
    "a string quartet playing a minuet",
    "reggae with a laid back groove",
    "fast techno with a pounding kick",
    "jazz piano trio with brushed drums",
    "a choir singing in a cathedral",
    "celtic fiddle jig",
)

_N_MEL = 16
_N_COARSE = 8
_CONTRAST_EDGES_HZ = (0, 200, 400, 800, 1600, 3200, 11025)
_CHROMA_RANGE_HZ = (250.0, 5000.0)  # semitones wider than an FFT bin (21.5 Hz)

FEATURE_NAMES: tuple[str, ...] = (
    *(f"logmel{i}_mean" for i in range(_N_MEL)),
    *(f"logmel_coarse{i}_std" for i in range(_N_COARSE)),
    "centroid_mean", "centroid_std", "bandwidth_mean", "bandwidth_std",
    "rolloff_mean", "rolloff_std", "flatness_mean", "flatness_std",
    *(f"contrast{i}" for i in range(len(_CONTRAST_EDGES_HZ) - 1)),
    *(f"chroma{i}" for i in range(12)),
    "onset_rate", "onset_mean", "onset_std", "pulse_strength", "pulse_log2_bpm",
)


# --- features ---------------------------------------------------------------------------------------------

def _power_spectrogram(x: np.ndarray) -> np.ndarray:
    frames = 1 + (x.size - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    return np.abs(np.fft.rfft(x[index] * np.hanning(N_FFT)[None, :], axis=1)).T ** 2  # (bins, frames)


def _mel_basis() -> np.ndarray:
    from riffusion.spectral import mel_filterbank

    return mel_filterbank(sample_rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=_N_MEL, min_frequency=30.0).numpy()


def clip_features(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Weight-free description of one clip: timbre, spectral envelope, pitch classes and pulse.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,) or (channels, samples)
        Audio at ``sample_rate``, at least ``N_FFT`` samples after resampling; down-mixed to mono,
        resampled to :data:`SAMPLE_RATE` and scaled to a fixed RMS, so loudness is not a feature.
    sample_rate : int
        Hz.

    Returns
    -------
    np.ndarray, shape (len(FEATURE_NAMES),), float64
        In the order of :data:`FEATURE_NAMES`.

    Raises
    ------
    ValueError
        If the clip is silent or shorter than one FFT frame.
    """
    from riffusion.audio import resample
    from riffusion.dataset.features import onset_envelope, onset_rate

    x = np.asarray(waveform, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    if sample_rate != SAMPLE_RATE:
        x = resample(x[None].astype(np.float32), sample_rate, SAMPLE_RATE)[0].astype(np.float64)
    rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    if x.size < N_FFT or rms < 1e-5:
        raise ValueError(f"clip_features needs at least {N_FFT} samples of sound at {SAMPLE_RATE} Hz, got "
                         f"{x.size} samples with RMS {rms:.2g}")
    x = x * (0.1 / rms)
    power = _power_spectrogram(x) + 1e-12
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)

    logmel = 10 * np.log10(_mel_basis() @ power + 1e-10)  # (mels, frames), dB
    coarse = logmel.reshape(_N_COARSE, -1, logmel.shape[1]).mean(axis=1)

    weights = power / power.sum(axis=0, keepdims=True)
    centroid = (freqs[:, None] * weights).sum(axis=0)
    bandwidth = np.sqrt((((freqs[:, None] - centroid[None]) ** 2) * weights).sum(axis=0))
    rolloff = freqs[np.argmax(np.cumsum(weights, axis=0) >= 0.85, axis=0)]
    flatness = 10 * np.log10(np.exp(np.log(power).mean(axis=0)) / power.mean(axis=0))  # dB, <= 0
    khz = 1e-3

    contrast = []
    log_power = 10 * np.log10(power)
    for low, high in zip(_CONTRAST_EDGES_HZ[:-1], _CONTRAST_EDGES_HZ[1:]):
        band = np.sort(log_power[(freqs >= low) & (freqs < high)], axis=0)
        k = max(1, band.shape[0] // 5)
        contrast.append(float((band[-k:].mean(axis=0) - band[:k].mean(axis=0)).mean()))

    in_range = (freqs >= _CHROMA_RANGE_HZ[0]) & (freqs <= _CHROMA_RANGE_HZ[1])
    pitch_class = np.round(12 * np.log2(freqs[in_range] / 440.0)).astype(int) % 12  # 0 = A
    chroma = np.bincount(pitch_class, weights=np.sqrt(power[in_range]).sum(axis=1), minlength=12)
    chroma = chroma / chroma.sum()

    envelope = onset_envelope(x.astype(np.float32), SAMPLE_RATE)
    frame_rate = SAMPLE_RATE / HOP
    centred = envelope - envelope.mean()
    auto = np.correlate(centred, centred, mode="full")[centred.size - 1:]
    auto = auto / auto[0] if auto[0] > 0 else np.zeros_like(auto)
    lags = np.arange(int(frame_rate * 60 / 240), min(int(frame_rate * 60 / 30), auto.size - 1) + 1)
    best = lags[np.argmax(auto[lags])]
    level = envelope.mean()

    return np.array([
        *logmel.mean(axis=1), *coarse.std(axis=1),
        centroid.mean() * khz, centroid.std() * khz, bandwidth.mean() * khz, bandwidth.std() * khz,
        rolloff.mean() * khz, rolloff.std() * khz, flatness.mean(), flatness.std(),
        *contrast, *chroma,
        onset_rate(x.astype(np.float32), SAMPLE_RATE), np.log(level + 1e-6),
        envelope.std() / (level + 1e-6), auto[best], np.log2(60 * frame_rate / best),
    ], dtype=np.float64)


# --- statistics -------------------------------------------------------------------------------------------

def _check_sets(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need two (samples, features) arrays with the same features, got shapes {x.shape} "
                         f"and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"need at least 2 samples in each set, got {len(x)} and {len(y)}")
    return x, y


def standardiser(reference: np.ndarray) -> T.Callable[[np.ndarray], np.ndarray]:
    """A function scaling features to zero mean and unit variance on ``reference`` (samples, features);
    constant features are left centred, unscaled."""
    reference = np.asarray(reference, dtype=np.float64)
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return lambda features: (np.asarray(features, dtype=np.float64) - mean) / std


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussian fits of two sample sets (Dowson & Landau, 1982), as in FID/FAD:
    ``|mu_x - mu_y|^2 + tr(S_x + S_y - 2 (S_x S_y)^(1/2))``.

    ``x`` (n, d) and ``y`` (m, d); the matrix square root is taken as that of the symmetric
    ``S_x^(1/2) S_y S_x^(1/2)``, which has the same trace and stays real when covariances are singular.
    """
    x, y = _check_sets(x, y)
    cov_x, cov_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    values, vectors = np.linalg.eigh(cov_x)
    root_x = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.linalg.eigvalsh(root_x @ cov_y @ root_x)
    trace_root = np.sqrt(np.clip(cross, 0, None)).sum()
    mean_term = float(((x.mean(axis=0) - y.mean(axis=0)) ** 2).sum())
    return max(0.0, mean_term + float(np.trace(cov_x) + np.trace(cov_y) - 2 * trace_root))


def variety(x: np.ndarray, reference: np.ndarray) -> float:
    """Mean pairwise Euclidean distance within ``x`` over that within ``reference`` (both (samples,
    features)): 1.0 when ``x`` is as spread out as the reference, near 0 for near-copies."""
    x, reference = _check_sets(x, reference)

    def spread(a):
        d = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(axis=-1))
        return d[np.triu_indices(len(a), 1)].mean()

    base = spread(reference)
    if base <= 0:
        raise ValueError("the reference set has no spread: all its samples are identical")
    return float(spread(x) / base)


def grouped_folds(groups: T.Sequence[T.Hashable], num_folds: int, *, seed: int = 0) -> np.ndarray:
    """Fold index (0 .. num_folds - 1) per sample, whole groups to a fold, groups shuffled then dealt round
    robin so folds get near-equal numbers of groups. Needs at least ``num_folds`` distinct groups."""
    groups = list(groups)
    distinct = sorted(set(groups), key=str)
    if num_folds < 2 or len(distinct) < num_folds:
        raise ValueError(f"need num_folds >= 2 and at least that many groups, got num_folds={num_folds} and "
                         f"{len(distinct)} groups")
    order = np.random.default_rng(seed).permutation(len(distinct))
    fold_of = {distinct[i]: rank % num_folds for rank, i in enumerate(order)}
    return np.array([fold_of[g] for g in groups], dtype=int)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iterations: int = 25,
                 sample_weight: T.Optional[np.ndarray] = None) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (IRLS).

    ``x`` (n, d) features, ``y`` (n,) labels in {0, 1}; minimises the weighted mean log loss plus
    ``l2 / 2 * |w|^2 / n`` (the bias is not penalised). Returns ``(w, b)``: P(y = 1) = sigmoid(x @ w + b).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (len(x),) or not np.isin(y, (0, 1)).all():
        raise ValueError(f"need x of shape (n, d) and labels y of shape (n,) in {{0, 1}}, got {x.shape} and {y.shape}")
    n, d = x.shape
    weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    weight = weight / weight.sum()
    design = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, l2 / n)
    penalty[-1] = 0.0
    theta = np.zeros(d + 1)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(design @ theta, -30, 30)))
        gradient = design.T @ (weight * (p - y)) + penalty * theta
        hessian = (design * (weight * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def two_sample_accuracy(x: np.ndarray, x_groups: T.Sequence[T.Hashable], y: np.ndarray,
                        y_groups: T.Sequence[T.Hashable], *, num_folds: int = 5, l2: float = 1.0,
                        seed: int = 0) -> float:
    """Cross-validated balanced accuracy of a logistic regression telling ``x`` from ``y`` (classifier
    two-sample test, Lopez-Paz & Oquab, 2017): 0.5 when the sets are indistinguishable, 1.0 when fully
    separable.

    Each set is split into folds by its own groups (a track, a prompt), so no group is in both a training
    and a test fold; classes are weighted equally whatever their sizes. Uses ``min(num_folds, groups in
    the smaller set)`` folds.
    """
    x, y = _check_sets(x, y)
    x_groups, y_groups = list(x_groups), list(y_groups)
    if len(x_groups) != len(x) or len(y_groups) != len(y):
        raise ValueError(f"need one group per sample, got {len(x_groups)} for {len(x)} and {len(y_groups)} for "
                         f"{len(y)}")
    folds = min(num_folds, len(set(x_groups)), len(set(y_groups)))
    fold = np.concatenate([grouped_folds(x_groups, folds, seed=seed), grouped_folds(y_groups, folds, seed=seed + 1)])
    data = np.vstack([x, y])
    label = np.concatenate([np.ones(len(x)), np.zeros(len(y))])
    class_weight = np.where(label == 1, 1 / len(x), 1 / len(y))
    correct = np.zeros(len(label))
    for k in range(folds):
        test = fold == k
        w, b = fit_logistic(data[~test], label[~test], l2=l2, sample_weight=class_weight[~test])
        correct[test] = ((data[test] @ w + b > 0) == (label[test] == 1))
    return float(0.5 * (correct[label == 1].mean() + correct[label == 0].mean()))


# --- clip sets --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class ClipSet:
    """Clips as feature rows with their groups (track or prompt), and a name for the table."""

    name: str
    features: np.ndarray  # (clips, len(FEATURE_NAMES))
    groups: list[str]

    def __len__(self) -> int:
        return len(self.groups)


def find_tracks(music_dir: Path) -> dict[str, list[Path]]:
    """Audio files per package folder (the style) under ``music_dir``, sorted."""
    styles = {}
    for folder in sorted(p for p in music_dir.iterdir() if p.is_dir()):
        tracks = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if tracks:
            styles[folder.name] = tracks
    return styles


def select_tracks(styles: dict[str, list[Path]], max_tracks: int) -> list[tuple[str, Path]]:
    """Up to ``max_tracks`` (style, track) pairs, dealt round robin over the styles, each style's pick
    spread evenly over its sorted list."""
    picks = {}
    quota = {s: 0 for s in styles}
    for i in range(min(max_tracks, sum(map(len, styles.values())))):
        open_styles = [s for s in styles if quota[s] < len(styles[s])]
        quota[open_styles[i % len(open_styles)]] += 1
    for style, tracks in styles.items():
        n = quota[style]
        picks[style] = [tracks[round(j * (len(tracks) - 1) / max(1, n - 1))] for j in range(n)] if n > 1 else tracks[:n]
    return [(s, t) for s in styles for t in picks[s]]


def cut_clips(waveform: np.ndarray, num_clips: int, clip_samples: int) -> list[np.ndarray]:
    """Up to ``num_clips`` clips of ``clip_samples`` from a mono waveform, evenly spaced over its length
    (without the first and last 3 %), skipping near-silent ones."""
    usable = waveform[int(0.03 * waveform.size): waveform.size - int(0.03 * waveform.size)]
    if usable.size < clip_samples:
        usable = waveform
    if usable.size < clip_samples:
        return []
    last = usable.size - clip_samples
    starts = sorted({round(i * last / max(1, num_clips - 1)) for i in range(num_clips)}) if num_clips > 1 else [last // 2]
    clips = [usable[s: s + clip_samples] for s in starts]
    return [c for c in clips if np.sqrt(np.mean(c**2)) > 1e-3]


def real_clips(selection: list[tuple[str, Path]], clips_per_track: int, clip_samples: int
               ) -> list[tuple[str, str, np.ndarray]]:
    """(style, track name, mono clip at SAMPLE_RATE) for every selected track."""
    from riffusion.audio import read_audio

    out = []
    for style, path in selection:
        waveform, _ = read_audio(path, sample_rate=SAMPLE_RATE, mono=True)
        for clip in cut_clips(np.asarray(waveform).reshape(-1), clips_per_track, clip_samples):
            out.append((style, f"{style}/{path.stem}", clip))
    return out


def through_format(clip: np.ndarray, params) -> np.ndarray:
    """A clip turned into the model's spectrogram image and back to audio with the default phase method."""
    from riffusion.image import image_from_waveform, waveform_from_image

    image = image_from_waveform(np.clip(clip, -1, 1)[None], SAMPLE_RATE, params)
    return np.asarray(waveform_from_image(image, params)).reshape(-1)


def model_clips(model: str, seeds: int, clip_samples: int) -> tuple[list[tuple[str, np.ndarray, int]], float]:
    """(prompt, waveform, sample rate) for every prompt x seed from noise at the model's own defaults, and
    the seconds it took (generation only)."""
    from riffusion.datatypes import InferenceInput, PromptInput
    from riffusion.generation import generate_clips
    from riffusion.loading import load_pipeline

    pipeline = load_pipeline(model, device="cpu")
    inputs = []
    for prompt in PROMPTS:
        for seed in range(seeds):
            p = PromptInput(prompt=prompt, seed=1000 + seed, denoising=1.0, guidance=pipeline.default_guidance)
            inputs.append(InferenceInput(start=p, end=p, alpha=0.0, seed_image_id=None,
                                         num_inference_steps=pipeline.default_num_inference_steps))
    start = time.perf_counter()
    clips = generate_clips(pipeline, inputs)
    seconds = time.perf_counter() - start
    return [(c.inputs.start.prompt, np.asarray(c.waveform), c.sample_rate) for c in clips], seconds


def features_of(name: str, clips: T.Iterable[tuple[str, np.ndarray, int]]) -> ClipSet:
    rows, groups = [], []
    for group, waveform, rate in clips:
        rows.append(clip_features(waveform, rate))
        groups.append(group)
    return ClipSet(name, np.array(rows), groups)


@dataclasses.dataclass
class Row:
    name: str
    reference: str
    clips: int
    accuracy: float
    frechet: float
    variety: float


def compare(x: ClipSet, reference: ClipSet, scale: T.Callable[[np.ndarray], np.ndarray], *, seed: int = 0) -> Row:
    """The three statistics of ``x`` against ``reference``, on features standardised by ``scale``."""
    a, b = scale(x.features), scale(reference.features)
    return Row(x.name, reference.name, len(x),
               two_sample_accuracy(a, x.groups, b, reference.groups, seed=seed),
               frechet_distance(a, b), variety(a, b))


def format_table(rows: T.Sequence[Row]) -> str:
    width = max(len(r.name) for r in rows)
    ref_width = max(len(r.reference) for r in rows)
    header = f"{'clip set':<{width}}  {'against':<{ref_width}}  clips  accuracy %  Frechet  variety"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.name:<{width}}  {r.reference:<{ref_width}}  {r.clips:5d}  {100 * r.accuracy:10.1f}  "
                     f"{r.frechet:7.1f}  {r.variety:7.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="model to generate with (repeatable; default "
                        "riffusion-small-v1)")
    parser.add_argument("--music-dir", type=Path, default=HELD_OUT_DIR, help="held-out recordings, one folder "
                        "per style (scripts/fetch_music.sh --held-out)")
    parser.add_argument("--max-tracks", type=int, default=32, help="recordings used, dealt over the styles")
    parser.add_argument("--clips-per-track", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per prompt (%d prompts)" % len(PROMPTS))
    args = parser.parse_args(argv)
    if args.max_tracks < 4 or args.clips_per_track < 1 or args.seeds < 1:
        parser.error(f"need --max-tracks >= 4, --clips-per-track >= 1 and --seeds >= 1, got {args.max_tracks}, "
                     f"{args.clips_per_track} and {args.seeds}")
    models = args.model or ["riffusion-small-v1"]

    import torch

    torch.set_num_threads(1)
    from riffusion.small import SMALL_IMAGE_WIDTH, SMALL_PARAMS

    clip_samples = SMALL_PARAMS.num_samples(SMALL_IMAGE_WIDTH)
    assert SMALL_PARAMS.sample_rate == SAMPLE_RATE and abs(clip_samples / SAMPLE_RATE - CLIP_SECONDS) < 0.05

    if not args.music_dir.is_dir() or len(styles := find_tracks(args.music_dir)) < 2:
        print(f"need held-out music of two styles in {args.music_dir}: run scripts/fetch_music.sh --held-out",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    selection = select_tracks(styles, args.max_tracks)
    clips = real_clips(selection, args.clips_per_track, clip_samples)
    tracks = sorted({track for _, track, _ in clips})
    half_a = set(tracks[0::2])  # sorted by style then name: each half has both styles
    style_names = list(styles)
    real = features_of("real (all)", ((t, c, SAMPLE_RATE) for _, t, c in clips))
    scale = standardiser(real.features)
    a = features_of("real A", ((t, c, SAMPLE_RATE) for _, t, c in clips if t in half_a))
    b = features_of("real B", ((t, c, SAMPLE_RATE) for _, t, c in clips if t not in half_a))
    style_sets = [features_of(s, ((t, c, SAMPLE_RATE) for st, t, c in clips if st == s)) for s in style_names[:2]]
    formatted = features_of("real A through format",
                            ((t, through_format(c, SMALL_PARAMS), SAMPLE_RATE) for _, t, c in clips if t in half_a))
    real_seconds = time.perf_counter() - start

    rows = [compare(a, b, scale), compare(style_sets[0], style_sets[1], scale), compare(formatted, b, scale)]
    timings = []
    for model in models:
        generated, seconds = model_clips(model, args.seeds, clip_samples)
        timings.append(f"{model}: {len(generated)} clips in {seconds:.0f} s")
        rows.append(compare(features_of(model, generated), b, scale))

    print(f"realism: {len(real)} clips of {len(tracks)} held-out tracks ({', '.join(style_names)}), "
          f"{len(FEATURE_NAMES)} features, {CLIP_SECONDS} s at {SAMPLE_RATE} Hz; {platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, 1 thread")
    print(f"models from noise at their own steps and guidance, {len(PROMPTS)} prompts x {args.seeds} seeds; "
          f"recordings and the format pass took {real_seconds:.0f} s; " + "; ".join(timings))
    print(format_table(rows))
    print("accuracy: grouped 5-fold two-sample classifier, 50 = indistinguishable; Frechet: Gaussian fits of "
          "standardised features, 0 = same; variety: spread over the reference's, 1.0 = as varied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
