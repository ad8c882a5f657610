"""Conversion commands of the original CLI: audio <-> spectrogram images, clip sampling, EXIF printing."""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import typing as T
import warnings
from pathlib import Path

COMMANDS = (
    "audio_to_image",
    "image_to_audio",
    "sample_clips",
    "print_exif",
    "audio_to_images_batch",
    "sample_clips_batch",
)

_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png")


_SPECTROGRAM_OPTIONS = (
    "step_size_ms", "num_frequencies", "min_frequency", "max_frequency", "window_duration_ms",
    "padded_duration_ms", "power_for_image",
)


def _params(*, stereo: bool, sample_rate: int, options: dict[str, T.Any]):
    """SpectrogramParams from a command's spectrogram options (its keyword arguments of those names)."""
    from riffusion.spectrogram_params import SpectrogramParams

    fields = {name: options[name] for name in _SPECTROGRAM_OPTIONS}
    return SpectrogramParams(stereo=stereo, sample_rate=sample_rate, **fields)


def audio_to_image(
    *,
    audio: str,
    image: str,
    step_size_ms: int = 10,
    num_frequencies: int = 512,
    min_frequency: int = 0,
    max_frequency: int = 10000,
    window_duration_ms: int = 100,
    padded_duration_ms: int = 400,
    power_for_image: float = 0.25,
    stereo: bool = False,
    device: str = "cuda",
) -> None:
    """Compute a spectrogram image (with EXIF parameters) from an audio file, at the file's sample rate."""
    from riffusion.audio import read_audio
    from riffusion.image import save_image
    from riffusion.spectrogram_image_converter import SpectrogramImageConverter

    _check_image_extension(image)
    waveform, sample_rate = read_audio(audio)
    params = _params(stereo=stereo, sample_rate=sample_rate, options=locals())
    converter = SpectrogramImageConverter(params=params, device=device)
    save_image(converter.image_from_waveform(waveform, sample_rate), image)
    print(f"Wrote {image}")


def image_to_audio(
    *,
    image: str,
    audio: str,
    device: str = "cuda",
    phase: str = "default",
    seed: int = 0,
) -> None:
    """Reconstruct audio from a spectrogram image; parameters from its EXIF (defaults when absent)."""
    import torch

    from riffusion.audio import audio_format, write_audio
    from riffusion.generation import check_phase
    from riffusion.image import max_value_from_image, open_image, params_from_image
    from riffusion.spectrogram_image_converter import SpectrogramImageConverter

    audio_format(audio)
    phase = check_phase(phase)  # parsed once: the typed value travels down
    pil_image = open_image(image)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        params = params_from_image(pil_image)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    converter = SpectrogramImageConverter(params=params, device=device, phase=phase)
    generator = torch.Generator().manual_seed(seed)
    waveform = converter.waveform_from_image(
        pil_image, max_value=max_value_from_image(pil_image), generator=generator
    )
    write_audio(audio, waveform, params.sample_rate)
    print(f"Wrote {audio} ({waveform.shape[-1] / params.sample_rate:.2f} seconds)")


def _clip_starts(rng, total_ms: int, duration_ms: int, count: int, name: str) -> list[int]:
    if duration_ms <= 0:
        raise ValueError(f"--duration-ms must be positive, got {duration_ms}")
    if total_ms <= duration_ms:
        raise ValueError(f"{name} lasts {total_ms} ms, not longer than the clip duration {duration_ms} ms")
    # RandomState.randint reproduces the original's clip positions for the same --seed.
    return [int(rng.randint(0, total_ms - duration_ms)) for _ in range(count)]


def _write_clips(waveform, sample_rate: int, starts: list[int], duration_ms: int, names: list[Path]) -> None:
    from riffusion.audio import write_audio

    for start_ms, path in zip(starts, names):
        begin = start_ms * sample_rate // 1000
        write_audio(path, waveform[:, begin : begin + duration_ms * sample_rate // 1000], sample_rate)


def _rng(seed: int, *salt: int):
    import numpy as np

    if seed < 0:
        return np.random.RandomState()
    return np.random.RandomState(seed if not salt else np.random.SeedSequence([seed, *salt]).generate_state(1)[0])


def sample_clips(
    *,
    audio: str,
    output_dir: str,
    num_clips: int = 1,
    duration_ms: int = 5120,
    mono: bool = False,
    extension: str = "wav",
    seed: int = -1,
) -> None:
    """Cut ``num_clips`` clips at uniformly random positions out of one audio file."""
    from riffusion.audio import WRITE_FORMATS, read_audio

    if extension not in WRITE_FORMATS:
        raise ValueError(f"unsupported --extension {extension!r}; expected one of {list(WRITE_FORMATS)}")
    if num_clips < 1:
        raise ValueError(f"--num-clips must be at least 1, got {num_clips}")
    waveform, sample_rate = read_audio(audio, mono=mono)
    total_ms = int(waveform.shape[1] * 1000 // sample_rate)
    starts = _clip_starts(_rng(seed), total_ms, duration_ms, num_clips, repr(audio))
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [
        out / f"clip_{i}_start_{start}_ms_duration_{duration_ms}_ms.{extension}" for i, start in enumerate(starts)
    ]
    _write_clips(waveform, sample_rate, starts, duration_ms, names)
    for name in names:
        print(f"Wrote {name}")


def print_exif(*, image: str) -> None:
    """Print the spectrogram parameters stored in an image's EXIF tags."""
    from riffusion.image import exif_from_image, open_image

    tags = exif_from_image(open_image(image))
    if not tags:
        print(f"warning: {image} has no EXIF tags", file=sys.stderr)
    for name, value in tags.items():
        print(f"{name:<20} = {value!s:>15}")


def _audio_files(audio_dir: str, pattern: str, limit: int) -> list[Path]:
    directory = Path(audio_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"audio directory not found: {audio_dir!r}")
    paths = sorted(p for p in directory.glob(pattern) if p.is_file())
    return paths[:limit] if limit > 0 else paths


def _run_batch(paths: list[Path], work: T.Callable[[int, Path], None], num_threads: T.Optional[int], what: str) -> None:
    """Run ``work`` over ``paths`` in a thread pool with a progress bar; report unreadable files at the end."""
    from tqdm import tqdm

    failed: list[tuple[Path, str]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=num_threads or os.cpu_count()) as pool:
        futures = {pool.submit(work, i, path): path for i, path in enumerate(paths)}
        with tqdm(total=len(paths), desc=what, unit="file", file=sys.stderr) as bar:
            for future in concurrent.futures.as_completed(futures):
                try:
                    future.result()
                except (ValueError, OSError) as exc:
                    failed.append((futures[future], str(exc)))
                bar.update()
    if failed:
        print(f"warning: skipped {len(failed)} unreadable file(s):", file=sys.stderr)
        for path, reason in sorted(failed):
            print(f"  {path}: {reason}", file=sys.stderr)


def audio_to_images_batch(
    *,
    audio_dir: str,
    output_dir: str,
    image_extension: str = "jpg",
    step_size_ms: int = 10,
    num_frequencies: int = 512,
    min_frequency: int = 0,
    max_frequency: int = 10000,
    window_duration_ms: int = 100,
    padded_duration_ms: int = 400,
    power_for_image: float = 0.25,
    mono: bool = False,
    sample_rate: int = 44100,
    device: str = "cuda",
    num_threads: T.Optional[int] = None,
    limit: int = -1,
) -> None:
    """Convert every audio file in a folder to a spectrogram image (stereo unless ``mono``)."""
    from riffusion.audio import read_audio
    from riffusion.image import save_image
    from riffusion.spectrogram_converter import match_channels
    from riffusion.spectrogram_image_converter import SpectrogramImageConverter

    if image_extension not in _IMAGE_EXTENSIONS:
        raise ValueError(f"unsupported --image-extension {image_extension!r}; expected one of {list(_IMAGE_EXTENSIONS)}")
    paths = _audio_files(audio_dir, "*", limit)
    params = _params(stereo=not mono, sample_rate=sample_rate, options=locals())
    converter = SpectrogramImageConverter(params=params, device=device)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)

    def convert(_: int, path: Path) -> None:
        waveform, rate = read_audio(path, sample_rate=sample_rate)
        image = converter.image_from_waveform(match_channels(waveform, params), rate)
        save_image(image, out / f"{path.stem}.{image_extension}")

    _run_batch(paths, convert, num_threads, "audio -> images")


def sample_clips_batch(
    *,
    audio_dir: str,
    output_dir: str,
    num_clips_per_file: int = 1,
    duration_ms: int = 5120,
    mono: bool = False,
    extension: str = "mp3",
    num_threads: T.Optional[int] = None,
    glob: str = "*",
    limit: int = -1,
    seed: int = -1,
) -> None:
    """Cut random clips out of every audio file in a folder; ``seed`` makes the positions repeatable."""
    from riffusion.audio import WRITE_FORMATS, read_audio

    if extension not in WRITE_FORMATS:
        raise ValueError(f"unsupported --extension {extension!r}; expected one of {list(WRITE_FORMATS)}")
    paths = _audio_files(audio_dir, glob, limit)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)

    def cut(index: int, path: Path) -> None:
        waveform, rate = read_audio(path, mono=mono)
        total_ms = int(waveform.shape[1] * 1000 // rate)
        # One generator per file, salted by its position in the sorted list: threads do not change results.
        starts = _clip_starts(_rng(seed, index), total_ms, duration_ms, num_clips_per_file, repr(str(path)))
        names = [
            out / f"{path.stem}_{i}_start_{start}_ms_dur_{duration_ms}_ms.{extension}" for i, start in enumerate(starts)
        ]
        _write_clips(waveform, rate, starts, duration_ms, names)

    _run_batch(paths, cut, num_threads, "sampling clips")


def _check_image_extension(path: str) -> None:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in _IMAGE_EXTENSIONS:
        raise ValueError(f"unsupported image extension {suffix!r} for {path!r}; expected one of {list(_IMAGE_EXTENSIONS)}")


def _spectrogram_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--step-size-ms", type=int, default=10, help="hop between columns (ms)")
    parser.add_argument("--num-frequencies", type=int, default=512, help="mel bins = image height")
    parser.add_argument("--min-frequency", type=int, default=0, help="lowest mel frequency (Hz)")
    parser.add_argument("--max-frequency", type=int, default=10000, help="highest mel frequency (Hz)")
    parser.add_argument("--window-duration-ms", type=int, default=100, help="Hann window length (ms)")
    parser.add_argument("--padded-duration-ms", type=int, default=400, help="FFT size (ms)")
    parser.add_argument("--power-for-image", type=float, default=0.25, help="magnitude exponent in the image")


def _clip_flags(parser: argparse.ArgumentParser, *, extension: str) -> None:
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--duration-ms", type=int, default=5120, help="clip length (ms)")
    parser.add_argument("--mono", action="store_true", help="down-mix to one channel")
    parser.add_argument("--extension", default=extension, help="output format (wav, flac, ogg, mp3)")
    parser.add_argument("--seed", type=int, default=-1, help="random seed for the positions (-1: random)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audio-to-image", help="audio file -> spectrogram image (with EXIF parameters)")
    p.add_argument("--audio", required=True, help="input audio file (wav, flac, ogg, mp3)")
    p.add_argument("--image", required=True, help="output image (.png or .jpg)")
    _spectrogram_flags(p)
    p.add_argument("--stereo", action="store_true", help="keep two channels (G and B of the image)")
    p.add_argument("--device", default="cuda", help="torch device (falls back to cpu)")
    p.set_defaults(_command=audio_to_image)

    p = subparsers.add_parser("image-to-audio", help="spectrogram image -> audio file")
    p.add_argument("--image", required=True, help="input spectrogram image")
    p.add_argument("--audio", required=True, help="output audio; format from the extension (wav, flac, ogg, mp3)")
    p.add_argument("--device", default="cuda", help="torch device (falls back to cpu)")
    p.add_argument("--phase", default="default",
                   help="phase reconstruction: default, pghi, griffin-lim, pghi+griffin-lim, mel-griffin-lim; "
                   "NAME:N sets an iterative one's iterations (e.g. mel-griffin-lim:96: better, ~4x slower)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial phase, for repeatable audio")
    p.set_defaults(_command=image_to_audio)

    p = subparsers.add_parser("sample-clips", help="cut random clips out of an audio file")
    p.add_argument("--audio", required=True)
    p.add_argument("--num-clips", type=int, default=1)
    _clip_flags(p, extension="wav")
    p.set_defaults(_command=sample_clips)

    p = subparsers.add_parser("print-exif", help="print the spectrogram parameters stored in an image")
    p.add_argument("--image", required=True)
    p.set_defaults(_command=print_exif)

    p = subparsers.add_parser("audio-to-images-batch", help="convert a folder of audio files to images")
    p.add_argument("--audio-dir", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--image-extension", default="jpg", choices=_IMAGE_EXTENSIONS)
    _spectrogram_flags(p)
    p.add_argument("--mono", action="store_true", help="one channel (default: stereo images)")
    p.add_argument("--sample-rate", type=int, default=44100, help="resample inputs to this rate (Hz)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--limit", type=int, default=-1, help="at most this many files (-1: all)")
    p.set_defaults(_command=audio_to_images_batch)

    p = subparsers.add_parser("sample-clips-batch", help="cut random clips out of a folder of audio files")
    p.add_argument("--audio-dir", required=True)
    p.add_argument("--num-clips-per-file", type=int, default=1)
    _clip_flags(p, extension="mp3")
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--glob", default="*", help="which files of --audio-dir to read")
    p.add_argument("--limit", type=int, default=-1, help="at most this many files (-1: all)")
    p.set_defaults(_command=sample_clips_batch)
