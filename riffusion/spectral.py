"""Spectral operations on tensors: STFT magnitudes, mel filterbanks, inverse mel, waveform synthesis.

Everything here works on ``torch.Tensor`` (or array-likes converted to tensors) on any device, with no
dependency on audio files, images or models. Shapes put channels first: a waveform is
``(channels, samples)``, a mel spectrogram ``(channels, n_mels, frames)``.
"""

from __future__ import annotations

import functools
import math
import typing as T

import numpy as np
import torch

from riffusion.spectrogram_params import SpectrogramParams
from riffusion.stft import hann_window, occupied_bins, sparse_csr

ArrayLike = T.Union[np.ndarray, torch.Tensor]

if T.TYPE_CHECKING:
    from riffusion.reconstruction import PhaseMethod


# Slaney's scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def _check_scale(mel_scale: str) -> None:
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")


def hz_to_mel(frequencies: ArrayLike, *, mel_scale: str = "htk") -> np.ndarray:
    """Convert frequencies in Hz to mels.

    Parameters
    ----------
    frequencies : array-like
        Frequencies in Hz.
    mel_scale : {"htk", "slaney"}
        ``"htk"``: ``2595 log10(1 + f / 700)`` (O'Shaughnessy, 1987). ``"slaney"``: linear below 1 kHz and
        logarithmic above (Slaney's Auditory Toolbox, 1998), as librosa's default.
    """
    f = np.asarray(frequencies, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    _check_scale(mel_scale)
    return np.where(
        f >= _MIN_LOG_HZ, _MIN_LOG_MEL + np.log(np.maximum(f, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP, f / _F_SP
    )


def mel_to_hz(mels: ArrayLike, *, mel_scale: str = "htk") -> np.ndarray:
    """Convert mels to Hz; the inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    _check_scale(mel_scale)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    min_frequency: float = 0.0,
    max_frequency: T.Optional[float] = None,
    norm: T.Optional[str] = None,
    mel_scale: str = "htk",
) -> torch.Tensor:
    """Triangular mel filterbank.

    Filters are triangles whose corners sit at ``n_mels + 2`` points equally spaced in mels between
    ``min_frequency`` and ``max_frequency``, evaluated at the FFT bin frequencies ``k * sample_rate / n_fft``.
    With ``mel_scale="htk", norm=None`` this is the matrix of librosa's ``filters.mel(htk=True, norm=None)``
    and torchaudio's ``melscale_fbanks(norm=None, mel_scale="htk")`` (transposed).

    Parameters
    ----------
    sample_rate : int
        Sampling rate in Hz.
    n_fft : int
        FFT size in samples; the filters span its ``n_fft // 2 + 1`` one-sided bins.
    n_mels : int
        Number of filters.
    min_frequency, max_frequency : float
        Band edges in Hz (``max_frequency`` defaults to Nyquist).
    norm : {None, "slaney"}
        ``None`` keeps unit peaks; ``"slaney"`` divides each filter by its bandwidth (constant area).
    mel_scale : {"htk", "slaney"}

    Returns
    -------
    torch.Tensor, shape (n_mels, n_fft // 2 + 1), float32, on the CPU
        Cached per argument set; treat as read-only.
    """
    if n_mels < 1 or n_fft < 2 or sample_rate <= 0:
        raise ValueError(
            f"need n_mels >= 1, n_fft >= 2, sample_rate > 0; got n_mels={n_mels}, n_fft={n_fft}, "
            f"sample_rate={sample_rate}"
        )
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    max_frequency = sample_rate / 2 if max_frequency is None else max_frequency
    return _mel_filterbank(
        int(sample_rate), int(n_fft), int(n_mels), float(min_frequency), float(max_frequency), norm, mel_scale
    )


@functools.lru_cache(maxsize=16)
def _mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, norm, mel_scale) -> torch.Tensor:
    bin_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    corners_hz = mel_to_hz(
        np.linspace(hz_to_mel(fmin, mel_scale=mel_scale), hz_to_mel(fmax, mel_scale=mel_scale), n_mels + 2),
        mel_scale=mel_scale,
    )
    widths = np.diff(corners_hz)
    offsets = corners_hz[:, None] - bin_hz[None, :]  # (n_mels + 2, n_bins)
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= (2.0 / (corners_hz[2:] - corners_hz[:-2]))[:, None]
    matrix = torch.from_numpy(weights.astype(np.float32))
    matrix.requires_grad_(False)
    return matrix


def _as_tensor(x: ArrayLike, device: T.Optional[T.Union[str, torch.device]] = None) -> torch.Tensor:
    tensor = torch.as_tensor(x)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    if tensor.dtype == torch.float64:
        tensor = tensor.to(torch.float32)
    return tensor.to(device) if device is not None else tensor


stft_window = hann_window
"""The analysis window: :func:`riffusion.stft.hann_window`."""


def waveform_to_stft_magnitude(waveform: ArrayLike, params: SpectrogramParams) -> torch.Tensor:
    """Magnitude STFT with the geometry of ``params``.

    Hann window of ``win_length`` centred in an ``n_fft`` frame, hop ``hop_length``, ``center=True`` with
    reflect padding, one-sided.

    Parameters
    ----------
    waveform : array-like, shape (channels, samples) or (samples,)
    params : SpectrogramParams

    Returns
    -------
    torch.Tensor, shape (channels, n_fft // 2 + 1, 1 + samples // hop_length)
        Magnitudes (not power, not dB), in the units of ``waveform``.
    """
    x = _as_tensor(waveform)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"waveform must have shape (channels, samples), got {tuple(x.shape)}")
    if x.shape[-1] < 2:
        raise ValueError(f"waveform has {x.shape[-1]} samples; need at least 2")
    pad_mode = "reflect" if x.shape[-1] > params.n_fft // 2 else "constant"
    spec = torch.stft(
        x,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.win_length,
        window=hann_window(params.win_length, device=x.device),
        center=True,
        pad_mode=pad_mode,
        onesided=True,
        return_complex=True,
    )
    return spec.abs()


def mel_matrix(params: SpectrogramParams) -> torch.Tensor:
    """The mel filterbank of ``params``, shape (num_frequencies, n_fft // 2 + 1)."""
    return mel_filterbank(
        sample_rate=params.sample_rate,
        n_fft=params.n_fft,
        n_mels=params.num_frequencies,
        min_frequency=params.min_frequency,
        max_frequency=params.max_frequency,
        norm=params.mel_scale_norm,
        mel_scale=params.mel_scale_type,
    )


def waveform_to_mel(waveform: ArrayLike, params: SpectrogramParams) -> torch.Tensor:
    """Mel magnitude spectrogram, as Riffusion images store it (riffusion-format.md §2).

    Parameters
    ----------
    waveform : array-like, shape (channels, samples)
        Audio at ``params.sample_rate``. Units carry through linearly: the original fed raw 16-bit sample
        values, giving magnitudes up to ~1e7.
    params : SpectrogramParams

    Returns
    -------
    torch.Tensor, shape (channels, num_frequencies, frames), float32, on the waveform's device
    """
    magnitude = waveform_to_stft_magnitude(waveform, params)
    fb = mel_matrix(params).to(magnitude.device)
    return torch.matmul(fb, magnitude)


class _InverseMel(T.NamedTuple):
    operator: torch.Tensor  # (support_bins, n_mels): pseudo-inverse restricted to bins the filters touch
    support_bins: int  # linear bins [0, support_bins) carry weight; the rest are always zero
    n_freqs: int
    fb: torch.Tensor  # (n_mels, support_bins) filterbank, sparse CSR: each bin feeds at most two filters
    fb_t: torch.Tensor  # (support_bins, n_mels), its transpose, sparse CSR
    unseen: torch.Tensor  # (k,) bins below support_bins that no filter sees (DC, for filters from 0 Hz)
    unseen_source: torch.Tensor  # (k,) for each, the nearest bin some filter does see


@functools.lru_cache(maxsize=8)
def _inverse_mel(params: SpectrogramParams, device: str) -> _InverseMel:
    fb = mel_matrix(params).to(torch.float64)
    support = occupied_bins(fb.sum(0))
    operator = torch.linalg.pinv(fb[:, :support]).to(torch.float32).to(device)
    dense = fb[:, :support]
    weight = dense.sum(0)
    seen, unseen = torch.nonzero(weight > 0).flatten(), torch.nonzero(weight == 0).flatten()
    if not seen.numel():
        unseen = seen
    right = torch.searchsorted(seen, unseen).clamp_(max=max(seen.numel() - 1, 0))
    left = (right - 1).clamp_(min=0)
    source = torch.where((unseen - seen[left]).abs() < (seen[right] - unseen).abs(), seen[left], seen[right])
    return _InverseMel(
        operator, support, fb.shape[1], sparse_csr(dense, device), sparse_csr(dense.T, device),
        unseen.to(device), source.to(device),
    )


def _sparse_mm(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``matrix @ x`` for a sparse (m, k) matrix and x of shape (..., k, n)."""
    k, n = x.shape[-2:]
    columns = x.reshape(-1, k, n).transpose(0, 1).reshape(k, -1)
    out = (matrix @ columns).reshape(matrix.shape[0], -1, n).transpose(0, 1)
    return out.reshape(*x.shape[:-2], matrix.shape[0], n)


def mel_to_linear(mel: ArrayLike, params: SpectrogramParams, *, refine_iters: int = 4) -> torch.Tensor:
    """Linear-frequency magnitudes whose mel projection matches ``mel``.

    The minimum-norm least-squares solution through a pseudo-inverse computed once per parameter set and
    device (cached), clipped at zero, then ``refine_iters`` multiplicative non-negative least-squares
    updates (Lee & Seung, 2001) that restore the mel energy the clipping removed; bins no filter sees (DC,
    for a filterbank from 0 Hz) take the value of the nearest bin one does. This replaces the
    original's 200-iteration SGD, which did not converge and no longer runs on current torchaudio.

    Parameters
    ----------
    mel : array-like, shape (..., num_frequencies, frames)
        Non-negative mel magnitudes.
    params : SpectrogramParams
    refine_iters : int, keyword-only
        Non-negative refinement steps (0 to skip).

    Returns
    -------
    torch.Tensor, shape (..., n_fft // 2 + 1, frames), non-negative float32 on ``mel``'s device
    """
    m = _as_tensor(mel)
    if m.ndim < 2 or m.shape[-2] != params.num_frequencies:
        raise ValueError(
            f"mel spectrogram must have shape (..., {params.num_frequencies}, frames) for these params, "
            f"got {tuple(m.shape)}"
        )
    if refine_iters < 0:
        raise ValueError(f"refine_iters must be >= 0, got {refine_iters}")
    inv = _inverse_mel(params, str(m.device))
    m = m.clamp_min(0)
    linear = torch.matmul(inv.operator, m).clamp_min_(0)
    if refine_iters:
        numerator = _sparse_mm(inv.fb_t, m)
        eps = 1e-12 * float(m.amax()) + 1e-30 if m.numel() else 1e-30
        linear.add_(eps)
        for _ in range(refine_iters):
            linear.mul_(numerator / (_sparse_mm(inv.fb_t, _sparse_mm(inv.fb, linear)) + eps))
    if inv.unseen.numel():
        # No filter sees these bins, so the mel leaves them free; a hole there (a zero at DC) would read to
        # phase reconstruction as two components where the music has one lobe around 0 Hz.
        linear[..., inv.unseen, :] = linear[..., inv.unseen_source, :]
    pad = inv.n_freqs - inv.support_bins
    if pad:
        linear = torch.nn.functional.pad(linear, (0, 0, 0, pad))
    return linear


def mel_to_waveform(
    mel: ArrayLike,
    params: SpectrogramParams,
    *,
    phase: T.Union["PhaseMethod", str] = "default",
    generator: T.Optional[torch.Generator] = None,
    reduced_rate: bool = True,
    num_iters: T.Optional[int] = None,
) -> torch.Tensor:
    """Synthesise audio from a mel magnitude spectrogram.

    Inverse mel (:func:`mel_to_linear`), then phase reconstruction
    (:func:`riffusion.reconstruction.reconstruct_waveform`); the default refines against ``mel`` itself
    (``"mel-griffin-lim"``).

    Parameters
    ----------
    mel : array-like, shape (channels, num_frequencies, frames)
    params : SpectrogramParams
    phase : PhaseMethod or str, keyword-only
        Phase reconstruction method and its iterations (:class:`riffusion.reconstruction.PhaseMethod`;
        text such as ``"griffin-lim"`` or ``"mel-griffin-lim:96"`` is parsed by its ``parse``).
    generator : torch.Generator, optional
        Source of randomness for methods that start from random phase: same seed, same audio.
    reduced_rate : bool
        Let the PGHI-based methods work at the lowest sample rate that holds the mel range (see
        :func:`riffusion.reconstruction.reconstruct_waveform`); ``False``: at ``params.sample_rate``
        throughout.
    num_iters : int, optional
        The converters' keyword for the iterations of an iterative method, folded into ``phase`` here
        (:meth:`riffusion.reconstruction.PhaseMethod.with_n_iter`; must agree with a count ``phase``
        carries, and is ignored by a method that does not iterate). Prefer ``phase``'s own count.

    Returns
    -------
    torch.Tensor, shape (channels, hop_length * (frames - 1)), float32, in the units of ``mel``
    """
    from riffusion.reconstruction import PhaseMethod, reconstruct_waveform

    phase = PhaseMethod.parse(phase).with_n_iter(num_iters)
    linear = mel_to_linear(mel, params)
    return reconstruct_waveform(
        linear,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.win_length,
        phase=phase,
        generator=generator,
        length=params.num_samples(linear.shape[-1]),
        mel=mel,
        mel_basis=mel_matrix(params),
        reduced_rate=reduced_rate,
    )
