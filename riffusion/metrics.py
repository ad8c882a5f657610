"""Weight-free audio quality metrics for spectrogram-to-audio reconstruction.

No learned models: every number here is a closed-form function of spectra, so it is cheap, deterministic
and comparable across runs.

- :func:`spectral_convergence` and :func:`log_spectral_distance` compare magnitudes with a reference.
- :func:`mel_consistency` asks how well audio reproduces the spectrogram image it was made from.
- :func:`loop_seam_discontinuity` measures the click where a clip played in a loop wraps around.
- :func:`high_band_energy` measures energy above a cut-off (Riffusion images stop at 10 kHz, so energy
  above it is an artefact).
- :func:`evaluate_audio` gathers them for one clip (what ``riffusion eval`` prints).
"""

from __future__ import annotations

import math
import typing as T

import numpy as np
import torch

from riffusion.audio import match_channels
from riffusion.spectrogram_params import SpectrogramParams

ArrayLike = T.Union[np.ndarray, torch.Tensor]

__all__ = [
    "spectral_convergence",
    "log_spectral_distance",
    "mel_consistency",
    "loop_seam_discontinuity",
    "high_band_energy",
    "evaluate_audio",
]

_TINY = 1e-30


def _tensor(x: ArrayLike, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.is_complex():
        raise ValueError(f"{name} must be real magnitudes, got a complex array")
    t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _pair(estimate: ArrayLike, reference: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    e, r = _tensor(estimate, "estimate"), _tensor(reference, "reference")
    if e.shape != r.shape:
        raise ValueError(f"estimate and reference must have the same shape, got {tuple(e.shape)} and {tuple(r.shape)}")
    if e.numel() == 0:
        raise ValueError("estimate and reference are empty")
    return e, r


def spectral_convergence(estimate: ArrayLike, reference: ArrayLike, *, scale_invariant: bool = False) -> float:
    """Spectral convergence of magnitudes, in dB (lower is better).

    ``20 log10(||E - R||_F / ||R||_F)``: -20 dB means the error has a tenth of the reference's norm.
    Griffin & Lim (1984); the usual figure of merit for phase retrieval (Průša et al., 2017).

    Parameters
    ----------
    estimate, reference : array-like, same shape
        Non-negative magnitudes (linear, not dB), e.g. STFT or mel spectrograms.
    scale_invariant : bool, keyword-only
        First scale ``estimate`` by the least-squares gain ``<E, R> / <E, E>``, for comparisons where the
        overall level is arbitrary (normalised audio against an image).

    Returns
    -------
    float
        dB; ``-inf`` for a perfect match.

    Raises
    ------
    ValueError
        On shape mismatch, empty input, NaN/inf, or an all-zero reference.
    """
    e, r = _pair(estimate, reference)
    ref_norm = float(torch.linalg.vector_norm(r))
    if ref_norm == 0.0:
        raise ValueError("reference is all zeros; spectral convergence is undefined")
    if scale_invariant:
        energy = float((e * e).sum())
        e = e * (float((e * r).sum()) / energy if energy > 0 else 0.0)
    err = float(torch.linalg.vector_norm(e - r))
    return 20.0 * math.log10(err / ref_norm) if err > 0 else float("-inf")


def log_spectral_distance(estimate: ArrayLike, reference: ArrayLike, *, floor_db: float = -100.0) -> float:
    """Log-spectral distance of magnitudes, in dB (lower is better).

    For each frame (last axis), the root-mean-square over frequency (second-to-last axis) of the level
    difference ``20 log10(E / R)``; then the mean over frames and any leading axes. Levels are floored at
    ``floor_db`` below the reference's peak so silence does not dominate.

    Parameters
    ----------
    estimate, reference : array-like, shape (..., frequencies, frames)
        Non-negative magnitudes.
    floor_db : float, keyword-only
        Floor relative to the reference peak, in dB (negative).

    Returns
    -------
    float
        dB; 0 for identical spectra.
    """
    e, r = _pair(estimate, reference)
    if e.ndim < 2:
        raise ValueError(f"expected (..., frequencies, frames) magnitudes, got shape {tuple(e.shape)}")
    if floor_db >= 0:
        raise ValueError(f"floor_db must be negative, got {floor_db}")
    floor = max(float(r.max()), _TINY) * 10.0 ** (floor_db / 20.0)
    diff = 20.0 * (torch.log10(e.clamp_min(floor)) - torch.log10(r.clamp_min(floor)))
    return float(diff.square().mean(dim=-2).sqrt().mean())


def _waveform(waveform: ArrayLike, name: str = "waveform") -> torch.Tensor:
    x = torch.as_tensor(np.asarray(waveform) if not isinstance(waveform, torch.Tensor) else waveform)
    x = x.to(torch.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (channels, samples) or (samples,), got {tuple(x.shape)}")
    if x.shape[-1] < 2:
        raise ValueError(f"{name} has {x.shape[-1]} samples; need at least 2")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def mel_consistency(
    waveform: ArrayLike,
    mel: ArrayLike,
    params: T.Optional[SpectrogramParams] = None,
) -> float:
    """Mel spectral convergence of audio against the spectrogram it was made from, in dB (lower is better).

    The mel spectrogram of ``waveform`` (same geometry as the image) is compared with ``mel`` by
    scale-invariant :func:`spectral_convergence`, since audio is loudness-normalised while an image
    only stores relative levels. Frames are cropped to the shorter of the two.

    Parameters
    ----------
    waveform : array-like, shape (channels, samples)
        Audio at ``params.sample_rate`` (any scale). Channels are matched to ``mel``'s (down-mixed to mono
        or the first channels kept).
    mel : array-like or PIL.Image.Image
        Mel magnitudes, shape (channels, num_frequencies, frames), or a Riffusion spectrogram image
        (decoded with ``params``).
    params : SpectrogramParams, optional
        Geometry; default: the image's EXIF for an image, else the defaults.

    Returns
    -------
    float
        dB. Reconstructions from the original Riffusion (32 Griffin-Lim iterations) score about -24 dB on
        real music; the audio an image was computed from scores about -43 dB (the 8-bit image limit).
    """
    from PIL import Image

    from riffusion import spectral
    from riffusion.image import params_from_image, spectrogram_from_image

    if isinstance(mel, Image.Image):
        if params is None:
            params = params_from_image(mel, warn=False)
        mel = spectrogram_from_image(mel, power=params.power_for_image, stereo=params.stereo, max_value=1.0)
    params = params or SpectrogramParams()
    target = torch.as_tensor(np.asarray(mel) if not isinstance(mel, torch.Tensor) else mel).to(torch.float32)
    if target.ndim == 2:
        target = target[None]
    if target.ndim != 3 or target.shape[1] != params.num_frequencies:
        raise ValueError(
            f"mel must have shape (channels, {params.num_frequencies}, frames), got {tuple(target.shape)}"
        )
    x = match_channels(_waveform(waveform), target.shape[0])
    estimate = spectral.waveform_to_mel(x, params)
    frames = min(estimate.shape[-1], target.shape[-1])
    return spectral_convergence(estimate[..., :frames], target[..., :frames], scale_invariant=True)


def loop_seam_discontinuity(
    waveform: ArrayLike,
    sample_rate: int,
    *,
    window_ms: float = 46.0,
) -> float:
    """How much louder the spectral change is across a loop's seam than inside the clip, in dB.

    The clip is played in a loop: its end followed by its start. Short-time spectra (Hann window of
    ``window_ms``, quarter-window hop) are taken across that seam and over the clip; the spectral flux
    ``||S[t+1] - S[t]|| / max(||S[t]||, ||S[t+1]||)`` of the frames that touch the seam is compared with
    the median flux inside the clip. About 0 dB: the seam is as smooth as the music itself; +10 dB or more: an audible
    click or jump.

    Parameters
    ----------
    waveform : array-like, shape (channels, samples) or (samples,)
        The clip (any scale), at least four windows long.
    sample_rate : int
        Hz.
    window_ms : float, keyword-only
        Analysis window length in milliseconds.

    Returns
    -------
    float
        dB (``20 log10(seam flux / median flux)``).
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    x = _waveform(waveform).mean(0)
    win = max(8, int(round(window_ms / 1000.0 * sample_rate)))
    if x.shape[-1] < 4 * win:
        raise ValueError(
            f"clip has {x.shape[-1]} samples; need at least {4 * win} (four {window_ms} ms windows)"
        )
    hop = max(1, win // 4)
    window = torch.hann_window(win, dtype=torch.float32)

    def flux(signal: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(signal, n_fft=win, hop_length=hop, window=window, center=False, return_complex=True).abs()
        change = torch.linalg.vector_norm(spec[:, 1:] - spec[:, :-1], dim=0)
        # relative to the louder of the two frames: a track that ends in digital silence and loops back to
        # sound scores a finite jump (flux 1), not a division by a silent frame (once 640 dB)
        level = torch.linalg.vector_norm(spec, dim=0)
        return change / (torch.maximum(level[:-1], level[1:]) + _TINY)

    inside = flux(x)
    looped = torch.cat([x[-2 * win :], x[: 2 * win]])  # seam at sample 2 * win
    seam = flux(looped)
    starts = torch.arange(seam.shape[0] + 1) * hop
    touching = (starts + win > 2 * win) & (starts < 2 * win)  # frames whose window covers the seam
    # a flux value compares frames t and t + 1: keep those where either touches the seam
    mask = touching[:-1] | touching[1:]
    seam_flux = float(seam[mask].max())
    typical = float(inside.median())
    if typical <= 0.0:
        return 0.0 if seam_flux <= 0.0 else float("inf")
    return 20.0 * math.log10(max(seam_flux, _TINY) / typical)


def high_band_energy(waveform: ArrayLike, sample_rate: int, *, cutoff_hz: float = 10000.0) -> float:
    """Energy above ``cutoff_hz`` relative to the total, in dB (lower is better for Riffusion audio).

    Riffusion spectrograms stop at 10 kHz, so whatever a reconstruction puts above that is an artefact
    (aliasing, phase noise, clipping). Computed from the whole clip's spectrum, channels summed.

    Returns
    -------
    float
        dB (``10 log10(E_high / E_total)``); ``-inf`` when there is no energy above the cut-off.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not 0.0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"cutoff_hz must be between 0 and Nyquist ({sample_rate / 2} Hz), got {cutoff_hz}")
    x = _waveform(waveform).to(torch.float64)
    power = torch.fft.rfft(x, dim=-1).abs().square().sum(0)
    freqs = torch.fft.rfftfreq(x.shape[-1], d=1.0 / sample_rate, dtype=torch.float64)
    total = float(power.sum())
    if total == 0.0:
        raise ValueError("waveform is silent; high-band energy is undefined")
    high = float(power[freqs > cutoff_hz].sum())
    return 10.0 * math.log10(high / total) if high > 0 else float("-inf")


def evaluate_audio(
    waveform: ArrayLike,
    sample_rate: int,
    *,
    reference: T.Optional[ArrayLike] = None,
    image=None,
    params: T.Optional[SpectrogramParams] = None,
) -> dict[str, float]:
    """All metrics that apply to one clip, by name (values in dB).

    Parameters
    ----------
    waveform : array-like, shape (channels, samples)
        The clip, float, any scale.
    sample_rate : int
        Hz.
    reference : array-like, optional
        Reference audio at the same rate (e.g. the original the spectrogram came from): adds
        ``spectral_convergence_db`` (scale-invariant) and ``log_spectral_distance_db`` over the STFT of
        ``params`` within its mel band (what an image can carry), on the common length and channels.
    image : PIL.Image.Image, optional
        The spectrogram image the clip was made from: adds ``mel_consistency_db``.
    params : SpectrogramParams, optional
        STFT/mel geometry; default: the image's EXIF, else the defaults at ``sample_rate``.

    Returns
    -------
    dict
        ``high_band_energy_db`` and ``loop_seam_db`` always, plus the reference/image metrics above.
    """
    from riffusion import spectral
    from riffusion.image import params_from_image

    x = _waveform(waveform)
    if params is None:
        if image is not None:
            params = params_from_image(image, warn=False)
        else:
            params = SpectrogramParams(sample_rate=sample_rate)
    if params.sample_rate != sample_rate:
        raise ValueError(
            f"audio is at {sample_rate} Hz but the spectrogram parameters expect {params.sample_rate} Hz; "
            "resample it first"
        )
    results: dict[str, float] = {}
    if image is not None:
        results["mel_consistency_db"] = mel_consistency(x, image, params)
    if reference is not None:
        ref = _waveform(reference, "reference")
        channels = min(x.shape[0], ref.shape[0])
        length = min(x.shape[-1], ref.shape[-1])
        a = match_channels(x, channels)[:, :length]
        b = match_channels(ref, channels)[:, :length]
        # only the band the spectrogram can carry (min_frequency..max_frequency) is compared
        lo = int(math.ceil(params.min_frequency * params.n_fft / params.sample_rate))
        hi = int(params.max_frequency * params.n_fft / params.sample_rate) + 1
        sa = spectral.waveform_to_stft_magnitude(a, params)[:, lo:hi]
        sb = spectral.waveform_to_stft_magnitude(b, params)[:, lo:hi]
        results["spectral_convergence_db"] = spectral_convergence(sa, sb, scale_invariant=True)
        gain = float((sa.double() * sb.double()).sum() / max(float(sa.double().square().sum()), _TINY))
        results["log_spectral_distance_db"] = log_spectral_distance(sa * gain, sb)
    cutoff = min(params.max_frequency, 0.999 * sample_rate / 2)
    results["high_band_energy_db"] = high_band_energy(x, sample_rate, cutoff_hz=cutoff)
    results["loop_seam_db"] = loop_seam_discontinuity(x, sample_rate)
    return results
