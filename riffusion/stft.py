"""The short-time Fourier transform that phase reconstruction iterates with, and its geometry.

One STFT convention throughout: that of ``torch.stft(x, n_fft, hop_length, win_length,
window=hann(win_length), center=True, pad_mode="reflect")``, a periodic Hann window of ``win_length``
samples centred in an ``n_fft`` frame. This module owns:

- the window (:func:`hann_window`) and where it sits in its frame (:func:`window_offset`);
- the engine (:class:`Stft`, cached by :func:`stft_engine`): frames-major forward and least-squares
  inverse transforms with a fast overlap-add;
- geometry that keeps the frames while shrinking the work: the *compact* grid of a zero-padded window
  (:func:`compact_geometry`, :func:`compact_phase_ramp`, :func:`coarser_fft_size`) and a lower sample
  rate for band-limited spectra (:func:`reduced_rate_geometry`, :func:`is_fast_fft_size`), with the
  band-limited interpolation back to the original rate (:func:`upsample`);
- small helpers the spectral code shares: :func:`occupied_bins`, :func:`sparse_csr` and
  :func:`check_magnitude`.

Riffusion zero-pads its window 4x (``n_fft`` 17640, window 4410), so the ``n_fft`` grid is a 4x frequency
interpolation of the ``win_length``-point STFT of the same frames: every ``n_fft // win_length``-th bin of
it is exactly (up to a phase ramp) the STFT with the small FFT, where one transform costs several times
less. A Riffusion image also stops at 10 kHz, far below the 22.05 kHz Nyquist frequency of its 44.1 kHz
audio, so the same frames and bin frequencies can be computed at about half the sample rate.
"""

from __future__ import annotations

import functools
import math
import typing as T
import warnings

import torch

from riffusion import kernel_launch

__all__ = [
    "hann_window",
    "window_offset",
    "Stft",
    "stft_engine",
    "check_magnitude",
    "occupied_bins",
    "sparse_csr",
    "compact_geometry",
    "compact_phase_ramp",
    "coarser_fft_size",
    "is_fast_fft_size",
    "reduced_rate_geometry",
    "upsample",
]

TWO_PI = 2.0 * math.pi


# --- the window ---------------------------------------------------------------------------------------


def hann_window(win_length: int, *, device: T.Union[str, torch.device] = "cpu") -> torch.Tensor:
    """Periodic Hann window of ``win_length`` samples, float32, cached per length and device.

    Returns
    -------
    torch.Tensor, shape (win_length,)
        Shared between callers: treat as read-only.
    """
    return _hann_window(int(win_length), str(torch.device(device)))


@functools.lru_cache(maxsize=16)
def _hann_window(win_length: int, device: str) -> torch.Tensor:
    return torch.hann_window(win_length, device=device)


def window_offset(n_fft: int, win_length: int) -> int:
    """Where the window starts in its ``n_fft`` frame: ``torch.stft`` pads it with
    ``(n_fft - win_length) // 2`` zeros on the left."""
    return (n_fft - win_length) // 2


# --- the engine ---------------------------------------------------------------------------------------


class Stft:
    """Centred STFT with reflect padding on spectra laid out (batch, frames, bins).

    Frames-major, so every FFT runs on contiguous memory; the values are those of ``torch.stft`` /
    ``torch.istft`` (transposed). When ``hop_length`` divides ``n_fft`` the overlap-add is
    ``n_fft / hop_length`` strided additions with a cached window envelope (one compiled pass on the CPU),
    much faster than ``torch.istft`` there.

    Parameters
    ----------
    n_fft, hop_length, win_length : int
        Geometry in samples.
    device : str or torch.device
    """

    def __init__(self, n_fft: int, hop_length: int, win_length: int, device) -> None:
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.device = str(torch.device(device))
        self.window = hann_window(win_length, device=self.device)
        offset = window_offset(n_fft, win_length)
        self.frame_window = torch.nn.functional.pad(self.window, (offset, n_fft - win_length - offset))
        self.fast = n_fft % hop_length == 0

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, frames, n_fft // 2 + 1) complex."""
        half = self.n_fft // 2
        mode = "reflect" if waveform.shape[-1] > half else "constant"
        padded = torch.nn.functional.pad(waveform[:, None], (half, half), mode=mode)[:, 0]
        frames = padded.unfold(-1, self.n_fft, self.hop_length)
        return torch.fft.rfft(frames * self.frame_window, dim=-1)

    def inverse(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        """(batch, frames, n_fft // 2 + 1) complex -> (batch, length), least-squares overlap-add."""
        if not self.fast:
            return torch.istft(
                spectrum.transpose(1, 2),
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                win_length=self.win_length,
                window=self.window,
                center=True,
                length=length,
            )
        batch, frames, _ = spectrum.shape
        hop, ratio = self.hop_length, self.n_fft // self.hop_length
        blocks = torch.fft.irfft(spectrum, n=self.n_fft, dim=-1)
        offset = window_offset(self.n_fft, self.win_length)
        if offset % hop == 0 and self.win_length % hop == 0:  # the window's span only: padding adds nothing
            if kernel_launch.runs_compiled(blocks):  # one pass
                return self._overlap_add_compiled(blocks, offset, length)
            first, count = offset // hop, self.win_length // hop
            blocks = blocks[..., offset : offset + self.win_length].mul(self.window)
        else:
            first, count = 0, ratio
            blocks = blocks.mul_(self.frame_window)
        blocks = blocks.view(batch, frames, count, hop)
        total = torch.zeros(batch, frames + ratio - 1, hop, device=spectrum.device, dtype=blocks.dtype)
        for j in range(count):
            total[:, first + j : first + j + frames].add_(blocks[:, :, j])
        inv_envelope = _inverse_envelope(self.n_fft, hop, self.win_length, frames, self.device)
        start = self.n_fft // 2
        waveform = total.view(batch, -1)[:, start : start + length]
        waveform = waveform * inv_envelope[: waveform.shape[-1]]
        if waveform.shape[-1] < length:
            waveform = torch.nn.functional.pad(waveform, (0, length - waveform.shape[-1]))
        return waveform

    def _overlap_add_compiled(self, blocks: torch.Tensor, offset: int, length: int) -> torch.Tensor:
        """The overlap-add of :meth:`inverse` in one compiled pass per clip (CPU, float32)."""
        from riffusion.phase_kernels import overlap_add

        batch, frames, _ = blocks.shape
        inv_envelope = _inverse_envelope(self.n_fft, self.hop_length, self.win_length, frames, self.device)
        valid = min(length, inv_envelope.shape[0])
        waveform = torch.zeros(batch, length, dtype=blocks.dtype)
        window, envelope = self.window.numpy(), inv_envelope.numpy()
        for b in range(batch):
            kernel_launch.launch(
                overlap_add, blocks[b].numpy(), window, offset, self.hop_length, envelope, self.n_fft // 2,
                waveform[b, :valid].numpy(),
            )
        return waveform


@functools.lru_cache(maxsize=16)
def _stft_engine(n_fft: int, hop_length: int, win_length: int, device: str) -> Stft:
    return Stft(n_fft, hop_length, win_length, device)


def stft_engine(n_fft: int, hop_length: int, win_length: int, *, device="cpu") -> Stft:
    """The :class:`Stft` of a geometry on a device, cached (it holds the window and frame window)."""
    return _stft_engine(n_fft, hop_length, win_length, str(torch.device(device)))


@functools.lru_cache(maxsize=32)
def _inverse_envelope(n_fft: int, hop: int, win_length: int, frames: int, device: str) -> torch.Tensor:
    """1 / (sum of squared windows) over the centred output span (0 where no window reaches)."""
    offset = window_offset(n_fft, win_length)
    window = torch.hann_window(win_length, dtype=torch.float64)
    squared = torch.nn.functional.pad(window.square(), (offset, n_fft - win_length - offset))
    ratio = n_fft // hop
    total = torch.zeros(frames + ratio - 1, hop, dtype=torch.float64)
    for j, block in enumerate(squared.view(ratio, hop)):
        total[j : j + frames] += block
    envelope = total.flatten()[n_fft // 2 :]
    inverse = torch.where(envelope > 1e-11, 1.0 / envelope.clamp_min(1e-11), torch.zeros_like(envelope))
    return inverse.to(device=device, dtype=torch.float32)


def check_magnitude(magnitude, *, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """``magnitude`` as a float32 tensor after checking it against the geometry.

    Parameters
    ----------
    magnitude : array-like, shape (..., n_fft // 2 + 1, frames)
        Linear STFT magnitude, real and finite, at least 2 frames.
    n_fft, hop_length, win_length : int, keyword-only
        Need ``n_fft >= 2``, ``hop_length >= 1`` and ``1 <= win_length <= n_fft``.

    Raises
    ------
    ValueError
        Naming the value that does not fit and what was expected.
    """
    if not isinstance(magnitude, torch.Tensor):
        magnitude = torch.as_tensor(magnitude)
    if magnitude.is_complex():
        raise ValueError("magnitude must be real (an STFT magnitude), got a complex tensor")
    if not magnitude.is_floating_point() or magnitude.dtype == torch.float64:
        magnitude = magnitude.to(torch.float32)
    if n_fft < 2 or hop_length < 1 or not 1 <= win_length <= n_fft:
        raise ValueError(
            f"need n_fft >= 2, hop_length >= 1 and 1 <= win_length <= n_fft; got n_fft={n_fft}, "
            f"hop_length={hop_length}, win_length={win_length}"
        )
    if magnitude.ndim < 2 or magnitude.shape[-2] != n_fft // 2 + 1:
        raise ValueError(
            f"magnitude must have shape (..., n_fft // 2 + 1 = {n_fft // 2 + 1}, frames), "
            f"got {tuple(magnitude.shape)}"
        )
    if magnitude.shape[-1] < 2:
        raise ValueError(f"magnitude has {magnitude.shape[-1]} frames; need at least 2")
    if not bool(torch.isfinite(magnitude).all()):
        raise ValueError("magnitude contains NaN or infinite values")
    return magnitude


# --- helpers shared with the spectral code ------------------------------------------------------------


def occupied_bins(per_bin: torch.Tensor) -> int:
    """Number of leading bins up to the last one with a positive value in ``per_bin`` (1 when none).

    What magnitude updates and filterbank products need to touch: the bins above carry nothing (a
    Riffusion image stops at 10 kHz).
    """
    touched = torch.nonzero(per_bin > 0).flatten()
    return int(touched.max()) + 1 if touched.numel() else 1


def sparse_csr(matrix: torch.Tensor, device) -> torch.Tensor:
    """``matrix`` as a float32 sparse CSR tensor on ``device``, for filterbank products.

    torch's "sparse CSR support is in beta" warning is silenced: a sparse-dense matrix product is all
    the callers use.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return matrix.to(torch.float32).to_sparse_csr().to(device)


# --- the compact grid of a zero-padded window ---------------------------------------------------------


@functools.lru_cache(maxsize=64)
def compact_geometry(n_fft: int, win_length: int) -> tuple[int, int]:
    """The smallest equivalent FFT size for a zero-padded STFT.

    A window of ``win_length`` samples zero-padded to ``n_fft`` gives, at bins ``k * r``, the same values
    (up to a known phase ramp, :func:`compact_phase_ramp`) as an ``n = n_fft / r``-point STFT of the same
    frames, provided ``n >= win_length`` and the window sits at the same place in time.

    Parameters
    ----------
    n_fft, win_length : int
        STFT geometry in samples.

    Returns
    -------
    (n, r) : tuple of int
        Compact FFT size and the bin stride ``r = n_fft // n`` (``(n_fft, 1)`` when nothing smaller fits).
    """
    half = n_fft // 2 - window_offset(n_fft, win_length)
    for n in range(win_length, n_fft):
        if n_fft % n == 0 and n % 2 == 0 and n // 2 - window_offset(n, win_length) == half:
            return n, n_fft // n
    return n_fft, 1


def compact_phase_ramp(n_fft: int, win_length: int, *, device, dtype) -> torch.Tensor:
    """Phase to add to full-grid phases at bins ``k * r`` to get those of the compact grid.

    Returns
    -------
    torch.Tensor, shape (n // 2 + 1, 1)
        Radians, for ``(n, r) = compact_geometry(n_fft, win_length)``; cached, read-only.
    """
    return _compact_phase_ramp(n_fft, win_length, str(device), dtype)


@functools.lru_cache(maxsize=16)
def _compact_phase_ramp(n_fft: int, win_length: int, device: str, dtype) -> torch.Tensor:
    n, _ = compact_geometry(n_fft, win_length)
    shift = window_offset(n_fft, win_length) - window_offset(n, win_length)
    k = torch.arange(n // 2 + 1, dtype=torch.float64)
    ramp = TWO_PI * torch.remainder(k * shift, n) / n
    return ramp.to(device=device, dtype=dtype)[:, None]


def coarser_fft_size(n_fft: int, win_length: int, ratio: int) -> int:
    """``n_fft // ratio`` if an STFT of that size has its window at the same place in time, else ``n_fft``.

    Unlike :func:`compact_geometry` this asks for one given ratio (mel-constrained Griffin-Lim halves the
    padding, reading the full grid's mel from the coarser one by interpolation).
    """
    n = n_fft // ratio
    if ratio > 1 and n_fft % ratio == 0 and n % 2 == 0 and n >= win_length:
        if n // 2 - window_offset(n, win_length) == n_fft // 2 - window_offset(n_fft, win_length):
            return n
    return n_fft


# --- a lower sample rate for band-limited spectra -----------------------------------------------------


def is_fast_fft_size(n: int) -> bool:
    """Whether ``n`` is 7-smooth (no prime factor above 7), a size pocketfft and cuFFT transform fast."""
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


@functools.lru_cache(maxsize=64)
def reduced_rate_geometry(n_fft: int, hop_length: int, win_length: int, bins: int) -> T.Optional[tuple[int, int, int]]:
    """The same STFT at a lower sample rate, when only the lowest ``bins`` bins carry anything.

    Scaling the sample rate by ``q = hop' / hop_length`` and every length with it keeps the frames (same
    times) and the frequency of every bin (same spacing ``sample_rate / n_fft``); the rate only has to
    stay above twice the highest bin used. A Riffusion image stops at 10 kHz of 22.05: at 21 kHz every
    STFT, overlap-add and element-wise update costs about half. The waveform is brought back to the
    original rate by exact band-limited (FFT) interpolation (:func:`upsample`).

    Parameters
    ----------
    n_fft, hop_length, win_length : int
        STFT geometry in samples at the original rate.
    bins : int
        Number of leading bins with any energy (the rest are zero).

    Returns
    -------
    (n_fft', hop', win') or None
        The smallest geometry whose Nyquist bin lies above the ``bins`` by twice the window's main lobe
        (so its leakage does not fold back into them), with integer lengths, a fast FFT size
        (:func:`is_fast_fft_size`), and the window at the same place in its frame; ``None`` when none
        saves 10 % or more.
    """
    need = bins + 4 * max(1, n_fft // win_length)  # Hann main lobe: +-2 bins of the unpadded grid
    for hop in range(max(1, (2 * (need - 1) * hop_length + n_fft - 1) // n_fft), hop_length):
        if 10 * hop > 9 * hop_length:
            break
        if (n_fft * hop) % hop_length or (win_length * hop) % hop_length:
            continue
        n, win = n_fft * hop // hop_length, win_length * hop // hop_length
        if n % 2 or n // 2 + 1 < need or not is_fast_fft_size(n) or win < 2:
            continue
        centre, full_centre = n // 2 - window_offset(n, win), n_fft // 2 - window_offset(n_fft, win_length)
        if centre * hop_length != full_centre * hop:
            continue  # the window centre must scale too (it does whenever the paddings are even)
        return n, hop, win
    return None


def upsample(waveform: torch.Tensor, *, hop: int, hop_length: int, frames: int, pad_frames: int = 4) -> torch.Tensor:
    """Band-limited interpolation of a clip made at hop ``hop`` to hop ``hop_length`` (a higher rate).

    Zero-padding the spectrum (an exact sinc interpolation of a periodic signal); the ends are extended by
    odd reflection first, ``pad_frames`` hops on each side, faded to zero, so neither the ends nor the
    periodic wrap have a jump to ring into the clip.

    Parameters
    ----------
    waveform : torch.Tensor, shape (batch, hop * (frames - 1))
    hop, hop_length : int, keyword-only
        Hop in samples at the input and the output rate: the rate grows by ``hop_length / hop``.
    frames : int, keyword-only
        STFT frames the clip spans.
    pad_frames : int, keyword-only
        Hops of reflection on each side (fewer for clips too short to reflect).

    Returns
    -------
    torch.Tensor, shape (batch, hop_length * (frames - 1))
    """
    pad = max(0, min(pad_frames, frames - 2)) * hop  # reflection needs fewer samples than the clip has
    padded = waveform
    if pad:
        # odd (point) reflection: value and slope continue across the ends, so little rings into the clip
        reflected = torch.nn.functional.pad(waveform[:, None], (pad, pad), mode="reflect")[:, 0]
        padded = torch.cat([2 * waveform[:, :1] - reflected[:, :pad], waveform,
                            2 * waveform[:, -1:] - reflected[:, -pad:]], dim=-1)
        fade = torch.hann_window(2 * pad, periodic=False, dtype=padded.dtype, device=padded.device)[:pad]
        padded[:, :pad] *= fade
        padded[:, -pad:] *= fade.flip(0)
    n_in = padded.shape[-1]
    n_out = n_in * hop_length // hop  # exact: n_in is a multiple of hop
    spectrum = torch.fft.rfft(padded, dim=-1)
    if n_in % 2 == 0:
        spectrum[..., -1] *= 0.5  # the Nyquist bin splits between +/- frequencies at the higher rate
    out = torch.zeros(*spectrum.shape[:-1], n_out // 2 + 1, dtype=spectrum.dtype, device=spectrum.device)
    out[..., : spectrum.shape[-1]] = spectrum
    upsampled = torch.fft.irfft(out, n=n_out, dim=-1).mul_(n_out / n_in)
    start = pad * hop_length // hop
    return upsampled[..., start : start + hop_length * (frames - 1)]
