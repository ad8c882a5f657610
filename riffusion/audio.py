"""Audio files and levels: the one place that reads, writes, encodes, resamples and normalises audio.

Waveforms are ``np.ndarray`` of shape ``(channels, samples)``, float32 in [-1, 1]. Files go through
soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, Opus, MP3) in memory, without ffmpeg; resampling through soxr.
"""

from __future__ import annotations

import io
import os
import typing as T

import numpy as np
import soundfile as sf

from riffusion.files import atomic_path

#: Extension -> (soundfile format, subtype) for writing.
WRITE_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
#: Encoder settings of the lossy formats (soundfile's ``compression_level``, ``bitrate_mode``): MP3 at a
#: constant 192 kbps at 44.1/48 kHz (96 kbps at 22.05 kHz, MPEG-2), Vorbis at quality VBR around 110 kbps.
#: libsndfile's defaults (about 69 kbps VBR) lose more mel consistency with the image than the phase
#: method gains; ``bench/bench_phase.py`` prints the figures.
LOSSY_OPTIONS: dict[str, dict[str, T.Any]] = {
    "mp3": {"compression_level": 0.4, "bitrate_mode": "CONSTANT"},
    "ogg": {"compression_level": 0.1},
}
#: Extensions that :func:`read_audio` accepts.
READ_EXTENSIONS = ("wav", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff")

AudioSource = T.Union[str, os.PathLike, bytes, T.BinaryIO]


def _describe(source: AudioSource) -> str:
    return repr(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else "audio data"


def read_audio(
    source: AudioSource,
    *,
    sample_rate: T.Optional[int] = None,
    mono: bool = False,
) -> tuple[np.ndarray, int]:
    """Read an audio file.

    Parameters
    ----------
    source : path, bytes or binary file object
        WAV, FLAC, OGG/Vorbis, Opus or MP3 (whatever libsndfile decodes).
    sample_rate : int, optional, keyword-only
        Resample to this rate (Hz) when the file's differs (soxr, high quality).
    mono : bool, keyword-only
        Down-mix to one channel by averaging.

    Returns
    -------
    waveform : np.ndarray, shape (channels, samples), float32 in [-1, 1]
    sample_rate : int

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        The data is empty, corrupt or in a format libsndfile cannot decode.
    """
    name = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"audio file not found: {name}")
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext not in READ_EXTENSIONS:
            raise ValueError(
                f"unsupported audio file extension {ext!r} for {name}; expected one of {list(READ_EXTENSIONS)}"
            )
    elif isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(f"cannot decode {name} as audio ({exc}); expected WAV, FLAC, OGG, Opus or MP3") from exc
    if data.shape[0] == 0:
        raise ValueError(f"{name} contains no audio samples")
    waveform = np.ascontiguousarray(data.T)
    if mono and waveform.shape[0] > 1:
        waveform = waveform.mean(axis=0, keepdims=True)
    if sample_rate is not None and sample_rate != rate:
        waveform = resample(waveform, rate, sample_rate)
        rate = sample_rate
    return waveform, int(rate)


def resample(waveform: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality).

    Parameters
    ----------
    waveform : np.ndarray, shape (channels, samples)
    orig_sr, target_sr : int
        Rates in Hz.

    Returns
    -------
    np.ndarray, shape (channels, round(samples * target_sr / orig_sr)), float32
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    x = np.asarray(waveform, dtype=np.float32)
    if orig_sr == target_sr:
        return x
    import soxr

    out = soxr.resample(np.ascontiguousarray(x.T), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, x.shape[0]).T)


def audio_format(path: T.Union[str, os.PathLike], format: T.Optional[str] = None) -> str:
    """The write format of ``path`` (from ``format`` or the extension); ValueError if unsupported.

    Call it before expensive work so a bad output name fails at once.
    """
    return _format_for(os.fspath(path), format)[0]


def _format_for(name: str, format: T.Optional[str]) -> tuple[str, tuple[str, str]]:
    fmt = (format or os.path.splitext(name)[1].lstrip(".")).lower()
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"unsupported audio format {fmt!r} for {name!r}; expected one of {list(WRITE_FORMATS)}")
    return fmt, WRITE_FORMATS[fmt]


def _check_waveform(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"waveform must have shape (channels, samples) with samples > 0, got {x.shape}")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return np.clip(np.nan_to_num(x), -1.0, 1.0)


def _write(target, x: np.ndarray, sample_rate: int, fmt: str, container_subtype: tuple[str, str]) -> None:
    """soundfile.write of a checked (channels, samples) waveform in ``fmt``, with the format's container,
    subtype and encoder settings (:data:`LOSSY_OPTIONS`)."""
    container, subtype = container_subtype
    sf.write(target, x.T, int(sample_rate), format=container, subtype=subtype, **LOSSY_OPTIONS.get(fmt, {}))


def encode_audio(waveform: np.ndarray, sample_rate: int, format: str = "wav") -> bytes:
    """Encode a waveform to file bytes (``"wav"``, ``"flac"``, ``"ogg"`` or ``"mp3"``) in memory."""
    fmt = _format_for(f"audio.{format}", format)
    buffer = io.BytesIO()
    _write(buffer, _check_waveform(waveform, sample_rate), sample_rate, *fmt)
    return buffer.getvalue()


def write_audio(
    path: T.Union[str, os.PathLike],
    waveform: np.ndarray,
    sample_rate: int,
    *,
    format: T.Optional[str] = None,
) -> None:
    """Write a waveform to a file, format from the extension unless given; atomically (temp + rename)."""
    fmt = _format_for(os.fspath(path), format)
    x = _check_waveform(waveform, sample_rate)
    with atomic_path(path) as tmp:
        _write(tmp, x, sample_rate, *fmt)


def match_channels(waveform, channels: int):
    """``waveform`` with ``channels`` channels: averaged to mono, mono repeated, or the first ``channels`` kept.

    Parameters
    ----------
    waveform : np.ndarray or torch.Tensor, shape (channels, samples) or (samples,)
    channels : int
        1 or more.

    Returns
    -------
    The same array type, shape (channels, samples); the input itself when it already has ``channels``.
    """
    if channels < 1:
        raise ValueError(f"channels must be at least 1, got {channels}")
    x = waveform[None] if waveform.ndim == 1 else waveform
    have = x.shape[0]
    if have == channels:
        return x
    is_numpy = isinstance(x, np.ndarray)
    if channels == 1:
        return x.mean(axis=0, keepdims=True) if is_numpy else x.mean(0, keepdim=True)
    if have == 1:
        return np.repeat(x, channels, axis=0) if is_numpy else x.expand(channels, -1)
    return x[:channels]


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def normalize_loudness(
    waveform: np.ndarray,
    sample_rate: int = 44100,
    *,
    rms_dbfs: float = -12.0,
    peak_dbfs: float = -0.1,
    window_ms: float = 10.0,
    clip_db: float = 3.0,
) -> np.ndarray:
    """The original post-filter with a gentler peak stage: RMS to ``rms_dbfs``, peaks at ``peak_dbfs``.

    The original applied the RMS gain to 16-bit samples, which hard-clipped every peak above full scale by
    however much the music's crest factor exceeds ``peak_dbfs - rms_dbfs`` (11.9 dB), then normalised the
    peak. Here the overs are handled in two stages, as a mastering chain does: peaks more than ``clip_db``
    above the ceiling are first brought down to ``clip_db`` by a look-ahead peak limiter (a gain envelope
    that ramps down to each peak's required reduction within ``window_ms`` before it and recovers as fast
    after), so no peak is ever clipped by more than ``clip_db``; the rest is clipped. Clipping a few dB off
    isolated peaks is the smallest change to the signal's energy that brings them under the ceiling (the
    nearest waveform within it, sample by sample), whereas the limiter's gain dips turn down the loudest
    frames as a whole. Audio reconstructed from spectrogram images has a crest factor of 12-16 dB, so a
    few dB over; clipping those few dB keeps the audio's mel consistency with its image closer than the
    limiter alone (``clip_db=0``) does (``bench/bench_phase.py`` prints both).

    Parameters
    ----------
    waveform : np.ndarray, shape (channels, samples)
    sample_rate : int
        Hz, sets the limiter's time constants.
    rms_dbfs, peak_dbfs : float, keyword-only
        Targets in dB relative to full scale (1.0).
    window_ms : float, keyword-only
        Length of the limiter's gain ramps (ms, > 0): shorter keeps more loudness, longer distorts less.
    clip_db : float, keyword-only
        The most any peak is clipped, in dB (>= 0); the limiter takes the rest. 0: limiter only.

    Returns
    -------
    np.ndarray, same shape, float32, peak exactly ``peak_dbfs`` (unless silent)

    Raises
    ------
    ValueError
        For ``window_ms <= 0`` or ``clip_db < 0`` (or NaN).
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    if not window_ms > 0:
        raise ValueError(f"window_ms must be > 0 (limiter ramp length in ms), got {window_ms}")
    if not clip_db >= 0:
        raise ValueError(f"clip_db must be >= 0 (most dB a peak is clipped by; 0 = limiter only), got {clip_db}")
    x = np.asarray(waveform, dtype=np.float32)
    if not x.size or not np.isfinite(x).all() or np.abs(x).max() <= 1e-9:
        return np.zeros_like(x)
    ceiling = db_to_gain(peak_dbfs)
    limit = ceiling * db_to_gain(clip_db)  # the limiter's threshold; clipping covers ceiling..limit
    radius = max(1, int(window_ms / 2000.0 * sample_rate))
    # Limiting and clipping lower the RMS again, so gain and control peaks until the RMS settles.
    for _ in range(6):
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        if abs(20 * np.log10(rms) - rms_dbfs) < 0.25:
            break
        x = x * np.float32(db_to_gain(rms_dbfs) / rms)
        level = np.abs(x).max(axis=0)  # linked across channels: the stereo image does not shift
        if level.max() <= ceiling:
            break
        if level.max() > limit:
            # Gain each sample needs, held at its minimum over +-radius, then averaged over a window no
            # longer than the hold: the smooth envelope is at or below every peak's requirement when the
            # peak arrives.
            needed = np.minimum(1.0, limit / np.maximum(level, 1e-12))
            held = minimum_filter1d(needed, size=2 * radius + 1, mode="nearest")
            gain = uniform_filter1d(held, size=2 * radius + 1, mode="nearest")
            x = x * np.minimum(gain, needed).astype(np.float32)[None]
        x = np.clip(x, -ceiling, ceiling)
    peak = float(np.abs(x).max())
    return (x * np.float32(ceiling / peak)).astype(np.float32) if peak > 0 else x
