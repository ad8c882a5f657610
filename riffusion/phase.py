"""Phase reconstruction: a waveform from a linear STFT magnitude.

A Riffusion image stores only magnitudes. To hear it we need a phase for every time-frequency point. This
module offers, by name (:data:`METHODS`):

``"griffin-lim"``
    Fast Griffin-Lim (Perraudin, Balazs & Søndergaard, 2013) on the full STFT grid, from random phase
    drawn from ``generator``, 32 iterations, momentum 0.99: what the original Riffusion did.
``"pghi"``
    Phase-gradient heap integration (Průša, Balazs & Søndergaard, 2017): the phase is integrated from
    gradients estimated from the log-magnitude, in the paper's offline heap order over the whole
    spectrogram (:mod:`riffusion.phase_kernels`), no iterations. Deterministic.
``"pghi+griffin-lim"``
    PGHI phase refined by fast Griffin-Lim (``num_iters``, default :data:`PGHI_GL_ITERS`). The default
    when only a linear magnitude is known.
``"mel-griffin-lim"``
    ``"pghi+griffin-lim"`` (:data:`MEL_GL_WARMUP_ITERS`), then fast Griffin-Lim whose magnitude
    constraint is the *mel* spectrogram itself (:func:`mel_griffin_lim`, ``num_iters``, default
    :data:`MEL_GL_ITERS`; other counts without zero padding, see :func:`mel_griffin_lim_iters`). Needs
    the mel spectrogram and its filterbank (``mel=``, ``mel_basis=``; what
    :func:`riffusion.spectral.mel_to_waveform` passes), and is the default when they are given.

Where a method is named as text (``--phase``, the server's ``phase`` setting), an iterative one may carry
its iteration count: ``"mel-griffin-lim:96"`` (:func:`parse_method`).

The STFT is that of ``torch.stft(x, n_fft, hop_length, win_length, window=hann(win_length), center=True,
pad_mode="reflect")``: a Hann window of ``win_length`` samples centred in an ``n_fft`` frame. Riffusion
zero-pads 4x (``n_fft`` 17640, window 4410), so the ``n_fft`` grid is a 4x frequency interpolation of the
``win_length``-point STFT of the same frames. The PGHI-based methods work on that *compact* grid (every
``n_fft // win_length``-th bin; the phase relation between the two grids is exact), where one STFT costs
~10x less; see :func:`compact_geometry`.

A Riffusion image also stops at 10 kHz, far below the 22.05 kHz Nyquist frequency of its 44.1 kHz audio.
The PGHI-based methods then run at the lowest sample rate that holds the spectrum (21 kHz: the same
frames, window duration and bin frequencies, half the samples) and interpolate the waveform back
(:func:`reduced_rate_geometry`, ``reduced_rate=`` of :func:`reconstruct_waveform`).

On the CPU the element-wise steps of the Griffin-Lim loops and the overlap-add run in compiled kernels
(:mod:`riffusion.phase_kernels`, numba); other devices run the torch code beside each call, which does
the same arithmetic.
"""

from __future__ import annotations

import collections
import functools
import math
import typing as T
import warnings

import numpy as np
import scipy.sparse
import torch

__all__ = [
    "METHODS",
    "DEFAULT_METHOD",
    "PGHI_GL_ITERS",
    "MEL_METHODS",
    "MEL_GL_ITERS",
    "mel_griffin_lim_iters",
    "method_names",
    "reconstruct_waveform",
    "griffin_lim",
    "mel_griffin_lim",
    "pghi",
    "compact_geometry",
    "reduced_rate_geometry",
    "REDUCED_RATE_METHODS",
]

_EPS = 1e-16
_TWO_PI = 2.0 * math.pi
#: CPU float32 work runs in the compiled kernels of :mod:`riffusion.phase_kernels` (the same arithmetic
#: as the torch code beside each call, which any other device runs; tests compare the two).
_COMPILED = True


def _compiled_for(tensor: torch.Tensor) -> bool:
    """Whether work on ``tensor`` goes to the compiled kernels: CPU float32 / complex64, kernels on."""
    return _COMPILED and tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.complex64)


def _launch(kernel, *args) -> None:
    """Run a parallel kernel of :mod:`riffusion.phase_kernels` on as many threads as torch may use, under
    its lock, and leave torch's thread count as it was: numba's OpenMP layer sets the calling thread's
    OpenMP thread count, which torch reads as its own (``torch.set_num_threads(1)`` would become 2)."""
    import numba

    from riffusion.phase_kernels import PARALLEL_LOCK

    threads = torch.get_num_threads()
    with PARALLEL_LOCK:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        try:
            kernel(*args)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

#: Griffin-Lim iterations after PGHI for ``"pghi+griffin-lim"`` (chosen with bench/bench_phase.py).
PGHI_GL_ITERS = 24
#: Mel-constrained Griffin-Lim iterations of ``"mel-griffin-lim"``, and the linear ones before them
#: (chosen with bench/bench_phase.py: the best mel consistency that stays 10x faster than the original;
#: on its 12 clips 40 + 20 gave +10.2 dB at 11.2x, 48 + 16 +10.1 dB at 10.9x, 48 + 20 +10.3 dB at 10.0x,
#: 32 + 20 +10.0 dB at 11.9x, 24 + 12 +9.0 dB at 15.9x).
MEL_GL_ITERS = 20
MEL_GL_WARMUP_ITERS = 40
#: The same for a window that is not zero-padded (riffusion-small-v1): there the compact grid the linear
#: iterations run on is no smaller than the mel-constrained one, so they cost as much and gain less, and
#: are traded for mel-constrained ones. Its clips are small (256 frames), so 48 of them cost ~0.1 s more
#: than 16 and gain ~3.7 dB (8 images it generated: 8 + 16 -27.6 dB, 8 + 32 -30.5, 8 + 48 -31.2, 16 + 48
#: -31.3, 8 + 64 -32.4; its 6 seed images: -28.9, -32.7, -35.3, -34.9, -37.1).
MEL_GL_ITERS_UNPADDED = 48
MEL_GL_WARMUP_ITERS_UNPADDED = 8
#: Iterations of the original method.
GRIFFIN_LIM_ITERS = 32
#: Hann window's Gaussian-equivalent time-frequency spread, lambda = ratio * win_length**2 (Průša 2017).
HANN_GAMMA_RATIO = 0.25645


# --- geometry and cached constants -------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _window(win_length: int, device: str) -> torch.Tensor:
    """Periodic Hann window, cached per length and device (read-only)."""
    return torch.hann_window(win_length, device=device)


def _window_offset(n_fft: int, win_length: int) -> int:
    # torch.stft pads the window to n_fft with (n_fft - win_length) // 2 zeros on the left
    return (n_fft - win_length) // 2


def _support(per_bin: torch.Tensor) -> int:
    """Number of leading bins up to the last one with a positive value in ``per_bin`` (1 when none):
    what the magnitude updates and filterbank products need to touch (a Riffusion image stops at 10 kHz)."""
    touched = torch.nonzero(per_bin > 0).flatten()
    return int(touched.max()) + 1 if touched.numel() else 1


@functools.lru_cache(maxsize=64)
def compact_geometry(n_fft: int, win_length: int) -> tuple[int, int]:
    """The smallest equivalent FFT size for a zero-padded STFT.

    A window of ``win_length`` samples zero-padded to ``n_fft`` gives, at bins ``k * r``, the same values
    (up to a known phase ramp) as an ``n = n_fft / r``-point STFT of the same frames, provided
    ``n >= win_length`` and the window sits at the same place in time.

    Parameters
    ----------
    n_fft, win_length : int
        STFT geometry in samples.

    Returns
    -------
    (n, r) : tuple of int
        Compact FFT size and the bin stride ``r = n_fft // n`` (``(n_fft, 1)`` when nothing smaller fits).
    """
    half = n_fft // 2 - _window_offset(n_fft, win_length)
    for n in range(win_length, n_fft):
        if n_fft % n == 0 and n % 2 == 0 and n // 2 - _window_offset(n, win_length) == half:
            return n, n_fft // n
    return n_fft, 1


def _compact_phase_ramp(n_fft: int, win_length: int, device, dtype) -> torch.Tensor:
    """Phase (radians, shape (n // 2 + 1, 1)) to add to full-grid phases at bins k*r to get compact ones."""
    return _compact_ramp(n_fft, win_length, str(device), dtype)


@functools.lru_cache(maxsize=16)
def _compact_ramp(n_fft: int, win_length: int, device: str, dtype) -> torch.Tensor:
    n, _ = compact_geometry(n_fft, win_length)
    shift = _window_offset(n_fft, win_length) - _window_offset(n, win_length)
    k = torch.arange(n // 2 + 1, dtype=torch.float64)
    ramp = _TWO_PI * torch.remainder(k * shift, n) / n
    return ramp.to(device=device, dtype=dtype)[:, None]


class _Stft:
    """Centred STFT with reflect padding on spectra laid out (batch, frames, bins), frames-major so every
    FFT runs on contiguous memory; same values as ``torch.stft`` / ``torch.istft`` (transposed).

    When ``hop_length`` divides ``n_fft`` the overlap-add is ``n_fft / hop_length`` strided additions and
    the window envelope is cached, which is markedly faster than ``torch.istft`` on the CPU.
    """

    def __init__(self, n_fft: int, hop_length: int, win_length: int, device) -> None:
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.device = str(torch.device(device))
        self.window = _window(win_length, self.device)
        offset = _window_offset(n_fft, win_length)
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
        offset = _window_offset(self.n_fft, self.win_length)
        if offset % hop == 0 and self.win_length % hop == 0:  # the window's span only: padding adds nothing
            if _compiled_for(blocks):  # one pass
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
            _launch(overlap_add, blocks[b].numpy(), window, offset, self.hop_length, envelope, self.n_fft // 2,
                    waveform[b, :valid].numpy())
        return waveform


@functools.lru_cache(maxsize=32)
def _inverse_envelope(n_fft: int, hop: int, win_length: int, frames: int, device: str) -> torch.Tensor:
    """1 / (sum of squared windows) over the centred output span (0 where no window reaches)."""
    offset = _window_offset(n_fft, win_length)
    window = torch.hann_window(win_length, dtype=torch.float64)
    squared = torch.nn.functional.pad(window.square(), (offset, n_fft - win_length - offset))
    ratio = n_fft // hop
    total = torch.zeros(frames + ratio - 1, hop, dtype=torch.float64)
    for j, block in enumerate(squared.view(ratio, hop)):
        total[j : j + frames] += block
    envelope = total.flatten()[n_fft // 2 :]
    inverse = torch.where(envelope > 1e-11, 1.0 / envelope.clamp_min(1e-11), torch.zeros_like(envelope))
    return inverse.to(device=device, dtype=torch.float32)


def _check_magnitude(magnitude, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
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


@functools.lru_cache(maxsize=16)
def _stft(n_fft: int, hop_length: int, win_length: int, device: str) -> _Stft:
    return _Stft(n_fft, hop_length, win_length, device)


def _fgla(
    stft: _Stft,
    magnitude: torch.Tensor,
    spectrum: torch.Tensor,
    num_iters: int,
    momentum: float,
    length: int,
) -> torch.Tensor:
    """Fast Griffin-Lim loop on (batch, frames, bins) spectra; returns the waveform (batch, length).

    Bins above the highest one with any magnitude stay zero (as the update would keep them), so the
    element-wise work runs on the bins below it only (a Riffusion image stops at 10 kHz: half the grid).
    """
    alpha = momentum / (1.0 + momentum)
    previous = None
    # the shortest length whose centred STFT has as many frames: keeps the frame count while iterating
    natural = stft.hop_length * (spectrum.shape[1] - 1) + stft.n_fft % 2
    support = _support(magnitude.reshape(-1, magnitude.shape[-1]).amax(0))
    full = torch.zeros_like(spectrum)
    magnitude, spectrum = magnitude[..., :support], spectrum[..., :support]
    compiled = _compiled_for(magnitude) and num_iters > 0
    if compiled:  # the magnitude step fused in one compiled pass (same arithmetic as the torch one below)
        from riffusion.phase_kernels import magnitude_update

        rows = magnitude.shape[0] * magnitude.shape[1]
        target = magnitude.reshape(rows, support).numpy()
        update = full[..., :support].reshape(rows, support).numpy()  # written in place
    full[..., :support] = spectrum
    for _ in range(num_iters):
        rebuilt = stft.forward(stft.inverse(full, natural))[..., :support]
        if compiled:
            last = rebuilt if previous is None else previous
            _launch(
                magnitude_update, rebuilt.reshape(rows, support).numpy(), last.reshape(rows, support).numpy(),
                np.float32(0.0 if previous is None else alpha), target, update,
            )
            previous = rebuilt
            continue
        angles = rebuilt.clone() if previous is None else torch.sub(rebuilt, previous, alpha=alpha)
        # spectrum = magnitude * angles / |angles|, on the real view (complex abs is slow on the CPU)
        parts = torch.view_as_real(angles)
        scale = torch.addcmul(parts[..., 0].square(), parts[..., 1], parts[..., 1])
        scale = scale.add_(_EPS * _EPS).rsqrt_().mul_(magnitude)
        full[..., :support] = torch.view_as_complex(parts.mul_(scale.unsqueeze(-1)))
        previous = rebuilt
    return stft.inverse(full, length)


# --- Griffin-Lim --------------------------------------------------------------------------------------


def griffin_lim(
    magnitude: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    num_iters: int = GRIFFIN_LIM_ITERS,
    momentum: float = 0.99,
    init_phase: T.Optional[torch.Tensor] = None,
    generator: T.Optional[torch.Generator] = None,
    length: T.Optional[int] = None,
    compact: bool = False,
) -> torch.Tensor:
    """Fast Griffin-Lim: alternate STFT-consistency and magnitude projections, with momentum.

    Perraudin, Balazs & Søndergaard, "A fast Griffin-Lim algorithm", WASPAA 2013 (after Griffin & Lim,
    1984). Same update as ``torchaudio.transforms.GriffinLim`` and ``librosa.griffinlim``.

    Parameters
    ----------
    magnitude : torch.Tensor, shape (..., n_fft // 2 + 1, frames)
        Linear STFT magnitude (any units), float32, any device.
    n_fft, hop_length, win_length : int, keyword-only
        STFT geometry in samples.
    num_iters : int
        Iterations (each one inverse and one forward STFT); 0 returns the initial estimate.
    momentum : float
        Acceleration in [0, 1); 0 is the classic algorithm.
    init_phase : torch.Tensor, optional
        Initial phase in radians on the ``n_fft`` grid, broadcastable to ``magnitude``. Default: uniform
        random phase in [0, 2 pi) drawn from ``generator``.
    generator : torch.Generator, optional
        Source of the random initial phase (same seed, same audio, on any device).
    length : int, optional
        Output length in samples (default ``hop_length * (frames - 1)``).
    compact : bool
        Iterate on the compact grid of :func:`compact_geometry` (every ``r``-th bin of a zero-padded
        STFT): the same frames and window with ``r`` times fewer bins, several times faster per
        iteration, at some cost in how well the skipped bins match.

    Returns
    -------
    torch.Tensor, shape (..., length), float32, in the units of ``magnitude``
    """
    magnitude = _check_magnitude(magnitude, n_fft, hop_length, win_length)
    if num_iters < 0:
        raise ValueError(f"num_iters must be >= 0, got {num_iters}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    return _griffin_lim(
        magnitude, n_fft, hop_length, win_length, num_iters, momentum, init_phase, generator, length, compact
    )


def _random_phase(shape, generator: T.Optional[torch.Generator], device, dtype) -> torch.Tensor:
    """Uniform phase in [0, 2 pi), drawn on the generator's device (same seed, same phase anywhere)."""
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=source, dtype=dtype).mul_(_TWO_PI).to(device)


def _griffin_lim(magnitude, n_fft, hop_length, win_length, num_iters, momentum, init_phase, generator, length, compact):
    batch_shape = magnitude.shape[:-2]
    mag = magnitude.reshape(-1, *magnitude.shape[-2:])
    length = hop_length * (mag.shape[-1] - 1) if length is None else int(length)

    if init_phase is None:
        phase = _random_phase(mag.shape, generator, mag.device, mag.dtype)
    else:
        phase = torch.as_tensor(init_phase, device=mag.device, dtype=mag.dtype)
        phase = phase.expand(*batch_shape, *mag.shape[-2:]).reshape(mag.shape)

    n, r = compact_geometry(n_fft, win_length) if compact else (n_fft, 1)
    if r > 1:
        mag = mag[:, ::r]
        phase = phase[:, ::r] + _compact_phase_ramp(n_fft, win_length, mag.device, mag.dtype)
    mag = mag.transpose(1, 2).contiguous()  # (batch, frames, bins)
    spectrum = torch.polar(mag, phase.transpose(1, 2))
    stft = _stft(n, hop_length, win_length, str(mag.device))
    waveform = _fgla(stft, mag, spectrum, num_iters, momentum, length)
    return waveform.reshape(*batch_shape, length)


# --- PGHI ---------------------------------------------------------------------------------------------


def _bottleneck_scan(source: torch.Tensor, link: torch.Tensor) -> torch.Tensor:
    """Solve ``best[k] = max(source[k], min(link[k], best[k - 1]))`` along the last dim (Hillis-Steele).

    The maps ``x -> max(s, min(l, x))`` compose into maps of the same form, so a log-depth prefix scan
    over the (max, min) lattice gives, for every bin, the widest path from any source on its left.
    """
    s, link = source.clone(), link.clone()
    size, step = s.shape[-1], 1
    while step < size:
        s_next = torch.maximum(s[..., step:], torch.minimum(link[..., step:], s[..., :-step]))
        link[..., step:] = torch.minimum(link[..., step:], link[..., :-step])
        s[..., step:] = s_next
        step *= 2
    return s


def _integration_roots(magnitude: torch.Tensor) -> torch.Tensor:
    """For each coefficient (batch, frames, bins), the bin of its frame whose phase is carried in time.

    Real-time PGHI (Průša & Holighaus, 2017) processes frame ``m`` with a max-heap seeded by frame
    ``m - 1``: every coefficient takes its phase from the first popped neighbour, i.e. along the path of
    largest magnitudes. On the (previous frame -> bin, bin <-> adjacent bin) graph that is the widest
    path, found here for all frames at once by two bottleneck scans. Each coefficient's path runs
    monotonically in frequency to a *root* bin integrated in time; the result holds its index.
    """
    batch, frames, bins = magnitude.shape
    source = torch.zeros_like(magnitude)
    source[:, 1:] = magnitude[:, :-1]
    # first frame: one seed, its loudest coefficient (phase 0), as the offline heap starts
    source[:, 0].scatter_(1, magnitude[:, 0].argmax(1, keepdim=True), float("inf"))
    none = torch.full_like(magnitude[..., :1], -1.0)
    from_left = _bottleneck_scan(source, torch.cat([none, magnitude[..., :-1]], -1))
    from_right = _bottleneck_scan(source.flip(-1), torch.cat([magnitude[..., 1:], none], -1).flip(-1)).flip(-1)
    left_in = torch.cat([none, torch.minimum(magnitude[..., :-1], from_left[..., :-1])], -1)
    right_in = torch.cat([torch.minimum(magnitude[..., 1:], from_right[..., 1:]), none], -1)
    use_left = (left_in > source) & (left_in >= right_in)
    use_right = (right_in > source) & ~use_left
    index = torch.arange(bins, device=magnitude.device).expand(batch, frames, bins)
    root_left = torch.where(use_left, 0, index).cummax(-1).values
    root_right = torch.where(use_right, bins - 1, index).flip(-1).cummin(-1).values.flip(-1)
    return torch.where(use_left, root_left, torch.where(use_right, root_right, index))


@functools.lru_cache(maxsize=16)
def _bin_constants(n_fft: int, hop_length: int, win_length: int, bins: int, device: str):
    k = torch.arange(bins, dtype=torch.float64)
    # phase advance of bin k over one hop, and the frame-start reference shift, both reduced mod 2 pi in
    # float64 so that large k * hop products keep their precision
    advance = _TWO_PI * torch.remainder(k * hop_length, n_fft) / n_fft
    centre2 = 2 * _window_offset(n_fft, win_length) + win_length  # twice the window centre in the frame
    shift = _TWO_PI * torch.remainder(k * centre2, 2 * n_fft) / (2 * n_fft)
    return advance.to(device=device, dtype=torch.float32), shift.to(device=device, dtype=torch.float32)


def pghi(
    magnitude: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    tolerance: float = 1e-5,
    gamma: T.Optional[float] = None,
    causal: bool = False,
) -> torch.Tensor:
    """Phase from magnitude by phase-gradient heap integration (PGHI).

    Průša, Balazs & Søndergaard, "A noniterative method for reconstruction of phase from STFT magnitude",
    IEEE/ACM TASLP 25(5), 2017. For a Gaussian window the phase gradient follows from the log-magnitude
    gradient; the Hann window is treated as a Gaussian of spread ``lambda = 0.25645 * win_length**2``.
    By default the phase is integrated in the paper's offline heap order, over the whole spectrogram at
    once (:func:`riffusion.phase_kernels.integrate_phase`, compiled, on the CPU): it flows along ridges of
    large magnitude backwards in time too, e.g. from an onset into the quiet frames before it.
    ``causal=True`` gives the real-time variant's order (Průša & Holighaus, EUSIPCO 2017), frame by
    frame from the previous one, found with vectorised widest-path scans on any device; it suits
    streaming but is worse offline (on the bench's real music, 0.8 dB lower spectral convergence alone
    and 2.7 dB after 32 Griffin-Lim iterations, medians of 4 clips).

    Parameters
    ----------
    magnitude : torch.Tensor, shape (..., n_fft // 2 + 1, frames)
        Linear STFT magnitude, float32, any device.
    n_fft, hop_length, win_length : int, keyword-only
        STFT geometry in samples (Hann window of ``win_length`` centred in the ``n_fft`` frame).
    tolerance : float
        Magnitudes below ``tolerance * max`` (per clip) count as silence: their log is clamped there so
        their gradients stay finite and small.
    gamma : float, optional
        Gaussian spread ``lambda`` in samples squared (default ``0.25645 * win_length**2``, for Hann).
    causal : bool
        Frame-by-frame integration order (real-time PGHI) instead of the whole-spectrogram heap.

    Returns
    -------
    torch.Tensor, shape of ``magnitude``
        Phase in radians, in ``torch.stft``'s convention (relative to the frame start). Deterministic.
    """
    magnitude = _check_magnitude(magnitude, n_fft, hop_length, win_length)
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance}")
    lam = HANN_GAMMA_RATIO * win_length**2 if gamma is None else float(gamma)
    if lam <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    batch_shape = magnitude.shape[:-2]
    frames_major = magnitude.reshape(-1, *magnitude.shape[-2:]).transpose(1, 2).contiguous()
    phase = _pghi_frames_major(frames_major, n_fft, hop_length, win_length, tolerance, lam, causal)
    return phase.transpose(1, 2).reshape(magnitude.shape)


def _pghi_frames_major(
    s: torch.Tensor, n_fft: int, hop: int, win: int, tolerance: float, lam: float, causal: bool = False
):
    """PGHI on (batch, frames, bins) magnitudes; phase (batch, frames, bins) in torch.stft's convention."""
    batch, frames, bins = s.shape
    # Bins silent in every clip and frame (e.g. above the mel range) need no integration.
    loudest = s.amax(dim=(0, 1))
    support = min(bins, _support(loudest) + 1) if bool((loudest > 0).any()) else 1  # + 1: gradients there
    phase = torch.zeros_like(s)
    if support >= 2:
        phase[..., :support] = _pghi_core(s[..., :support].contiguous(), n_fft, hop, win, tolerance, lam, causal)
    _, shift = _bin_constants(n_fft, hop, win, bins, str(s.device))
    return phase.sub_(shift).remainder_(_TWO_PI)


def _pghi_core(
    s: torch.Tensor, n_fft: int, hop: int, win: int, tolerance: float, lam: float, causal: bool
) -> torch.Tensor:
    """PGHI on (batch, frames, bins) from bin 0; phase relative to the window centre."""
    batch, frames, bins = s.shape
    floor = s.amax(dim=(1, 2), keepdim=True).mul_(tolerance).clamp_min_(1e-30)
    log_s = torch.maximum(s, floor).log_()
    # 1. Gradients of the log-magnitude: d/d(frequency) per cycle/sample, d/d(time) per sample.
    d_freq = torch.gradient(log_s, dim=2)[0].mul_(n_fft)
    # A real signal's magnitude is even in frequency about 0 (and about Nyquist), so its frequency
    # derivative vanishes there; a one-sided difference would give DC a non-zero instantaneous frequency
    # and turn a DC offset or sub-bass level into a rotating phasor.
    d_freq[..., 0] = 0
    if bins == n_fft // 2 + 1:
        d_freq[..., -1] = 0
    d_time = torch.gradient(log_s, dim=1)[0].div_(hop)
    # 2. Phase increments. Over one hop (trapezoid rule) with the instantaneous frequency
    #    dphi/dt = 2 pi k / n_fft + (1 / lambda) dlog|S|/domega; over one bin with
    #    dphi/domega = -lambda dlog|S|/dt (times 1 / n_fft per bin).
    advance, _ = _bin_constants(n_fft, hop, win, bins, str(s.device))
    deviation = d_freq.mul_(hop / lam)
    step_time = (deviation[:, 1:] + deviation[:, :-1]).mul_(0.5).add_(advance).remainder_(_TWO_PI)
    step_freq = (d_time[..., 1:] + d_time[..., :-1]).mul_(-0.5 * lam / n_fft)
    if not causal:
        # 3. Offline: one heap over the whole spectrogram, per clip (sequential, compiled, on the CPU).
        from riffusion.phase_kernels import integrate_phase

        magnitude_np = s.detach().to("cpu", torch.float32).numpy()
        time_np = step_time.to("cpu").numpy()
        freq_np = step_freq.to("cpu").numpy()
        out = torch.empty(batch, frames, bins, dtype=torch.float64)
        for b in range(batch):
            silence = float(floor.reshape(-1)[b])
            out[b] = torch.from_numpy(integrate_phase(magnitude_np[b], time_np[b], freq_np[b], silence))
        return out.remainder_(_TWO_PI).to(device=s.device, dtype=s.dtype)
    along_freq = torch.zeros_like(s)
    torch.cumsum(step_freq, dim=-1, out=along_freq[..., 1:])
    # 3. Causal: integration paths; each coefficient's root bin, whose phase comes from the previous frame.
    root = _integration_roots(s)
    offset = along_freq.sub_(torch.gather(along_freq, -1, root)).remainder_(_TWO_PI)
    # 4. Frame by frame: phase[m] = (phase[m-1] + time step)[root] + frequency path from root to bin.
    root_t = root.transpose(0, 1).contiguous()
    offset_t = offset.transpose(0, 1).contiguous()
    step_t = step_time.transpose(0, 1).contiguous()
    out = torch.empty(frames, batch, bins, device=s.device, dtype=s.dtype)
    out[0] = offset_t[0]
    for m in range(1, frames):
        torch.gather(out[m - 1] + step_t[m - 1], 1, root_t[m], out=out[m])
        out[m].add_(offset_t[m])
        if m % 32 == 0:
            out[m].remainder_(_TWO_PI)
    return out.transpose(0, 1)


# --- Griffin-Lim against a mel spectrogram ------------------------------------------------------------


def _reduced_grid(n_fft: int, win_length: int, ratio: int) -> int:
    """``n_fft // ratio`` if an STFT of that size has its window at the same place in time, else ``n_fft``."""
    n = n_fft // ratio
    if ratio > 1 and n_fft % ratio == 0 and n % 2 == 0 and n >= win_length:
        if n // 2 - _window_offset(n, win_length) == n_fft // 2 - _window_offset(n_fft, win_length):
            return n
    return n_fft


def _sparse_csr(matrix: torch.Tensor, device) -> torch.Tensor:
    """``matrix`` as a float32 sparse CSR tensor on ``device``, for the filterbank products here and in
    :mod:`riffusion.spectral` (torch's "sparse CSR support is in beta" warning silenced: a matrix-dense
    product is all they use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return matrix.to(torch.float32).to_sparse_csr().to(device)


_MEL_GRIDS: "collections.OrderedDict[tuple, tuple]" = collections.OrderedDict()


def _mel_on_grid(mel_basis: torch.Tensor, n: int, n_fft: int, device) -> tuple:
    """The filterbank moved to an ``n``-point grid: magnitudes there, linearly interpolated to the
    ``n_fft`` bins, weighted by ``mel_basis``. Returns the sparse (n_mels, support) matrix, its transpose
    divided by the column sums (gains back to bins), the support (bins with any weight), and the same
    two by bin as NumPy arrays (``bin_start, bin_mel, to_mel, to_bin`` of
    :func:`riffusion.phase_kernels.mel_constrained_update`).

    Cached per basis tensor (treated as read-only, like :func:`riffusion.spectral.mel_filterbank`'s),
    grid and device; the cache holds the basis, so its storage is not reused while the entry lives.
    """
    key = (mel_basis.data_ptr(), tuple(mel_basis.shape), mel_basis.device, n, n_fft, str(device))
    if key in _MEL_GRIDS:
        _MEL_GRIDS.move_to_end(key)
        return _MEL_GRIDS[key][1]
    basis = mel_basis.detach().to("cpu", torch.float64)
    if n != n_fft:
        position = torch.arange(basis.shape[1], dtype=torch.float64) * (n / n_fft)
        low = position.floor().long().clamp(max=n // 2)
        high = (low + 1).clamp(max=n // 2)
        upper = position - low
        grid = torch.zeros(basis.shape[0], n // 2 + 1, dtype=torch.float64)
        grid.index_add_(1, low, basis * (1 - upper)).index_add_(1, high, basis * upper)
        basis = grid
    weight = basis.sum(0)
    support = _support(weight)
    basis, weight = basis[:, :support], weight[:support]
    back = (basis / weight.clamp_min(1e-30)).T.contiguous()
    # by bin, for the compiled CPU update (riffusion.phase_kernels.mel_constrained_update)
    by_bin = scipy.sparse.csr_matrix(basis.T.numpy())
    by_bin.sort_indices()
    start, mels, to_mel = by_bin.indptr, by_bin.indices, by_bin.data
    rows = np.repeat(np.arange(support), np.diff(start))
    to_bin = to_mel / weight.numpy()[rows]
    kernel = (start.astype(np.int64), mels.astype(np.int64), to_mel.astype(np.float32), to_bin.astype(np.float32))
    value = (_sparse_csr(basis, device), _sparse_csr(back, device), support, kernel)
    _MEL_GRIDS[key] = (mel_basis, value)
    while len(_MEL_GRIDS) > 8:
        _MEL_GRIDS.popitem(last=False)
    return value


def mel_griffin_lim(
    mel: torch.Tensor,
    mel_basis: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    init: torch.Tensor,
    num_iters: int = MEL_GL_ITERS,
    momentum: float = 0.99,
    length: T.Optional[int] = None,
) -> torch.Tensor:
    """Fast Griffin-Lim whose magnitude constraint is a mel spectrogram, not a linear magnitude.

    A Riffusion image fixes only the mel projection ``mel_basis @ |STFT|``; an inverse mel picks one
    linear magnitude among the many with that projection, and usually not one that any signal has, which
    is what limits Griffin-Lim on it. Here each iteration keeps the consistent spectrum's own magnitude
    and rescales it by the mel-domain ratio ``mel / (mel_basis @ |STFT|)`` spread back over the bins
    through the filterbank (a multiplicative projection in the manner of Lee & Seung's NMF updates), then
    the usual fast Griffin-Lim step follows (Perraudin et al., 2013). The STFT runs with half the FFT
    size when the window allows (for Riffusion's 4x zero-padded window, 2x padding: the mel of the full
    grid is read from it by interpolation, within about -36 dB), so an iteration costs about two compact
    Griffin-Lim iterations.

    Parameters
    ----------
    mel : torch.Tensor, shape (..., n_mels, frames)
        Target mel magnitudes (non-negative), float32.
    mel_basis : torch.Tensor, shape (n_mels, n_fft // 2 + 1)
        The filterbank ``mel`` was made with (:func:`riffusion.spectral.mel_matrix`).
    n_fft, hop_length, win_length : int, keyword-only
        STFT geometry of ``mel`` in samples.
    init : torch.Tensor, shape (..., samples)
        Starting waveform, e.g. from ``"pghi+griffin-lim"`` on an inverse mel; its phase and fine
        structure are refined, its level is matched to ``mel`` first.
    num_iters : int
        Iterations; 0 returns ``init`` rescaled.
    momentum : float
        Fast Griffin-Lim acceleration in [0, 1).
    length : int, optional
        Output length in samples (default ``hop_length * (frames - 1)``).

    Returns
    -------
    torch.Tensor, shape (..., length), float32, in the units of ``mel``
    """
    mel, mel_basis = torch.as_tensor(mel), torch.as_tensor(mel_basis)
    if mel.ndim < 2 or mel_basis.ndim != 2 or mel_basis.shape != (mel.shape[-2], n_fft // 2 + 1):
        raise ValueError(
            f"mel must be (..., n_mels, frames) and mel_basis (n_mels, n_fft // 2 + 1 = {n_fft // 2 + 1}); "
            f"got {tuple(mel.shape)} and {tuple(mel_basis.shape)}"
        )
    if num_iters < 0:
        raise ValueError(f"num_iters must be >= 0, got {num_iters}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    batch_shape, frames = mel.shape[:-2], mel.shape[-1]
    length = hop_length * (frames - 1) if length is None else int(length)
    target = mel.reshape(-1, *mel.shape[-2:]).to(torch.float32).clamp_min(0)  # (batch, n_mels, frames)
    batch = target.shape[0]
    x = torch.as_tensor(init).to(device=target.device, dtype=torch.float32)
    if x.shape[:-1] != batch_shape or 1 + x.shape[-1] // hop_length != frames:
        raise ValueError(
            f"init must have shape {(*batch_shape, hop_length * (frames - 1))} (frames of mel), "
            f"got {tuple(x.shape)}"
        )
    x = x.reshape(batch, -1)

    # 1. The analysis grid and the filterbank on it (sparse: each bin feeds at most a few filters).
    n = _reduced_grid(n_fft, win_length, 2)
    forward, back, support, by_bin = _mel_on_grid(mel_basis, n, n_fft, target.device)
    stft = _stft(n, hop_length, win_length, str(target.device))
    natural = hop_length * (frames - 1) + n % 2
    goal = target.permute(1, 0, 2).reshape(target.shape[1], -1)  # (n_mels, batch * frames)
    eps = 1e-7 * float(target.amax()) + 1e-30 if target.numel() else 1e-30

    def mel_of(magnitude: torch.Tensor) -> torch.Tensor:
        """(batch, frames, support) -> (n_mels, batch * frames)."""
        return forward @ magnitude.permute(2, 0, 1).reshape(support, -1)

    def modulus(spectrum: torch.Tensor) -> torch.Tensor:  # on the real view: complex abs is slow on the CPU
        parts = torch.view_as_real(spectrum)
        return torch.addcmul(parts[..., 0].square(), parts[..., 1], parts[..., 1]).sqrt_()

    # 2. Start from ``init`` at the target's level.
    spectrum = stft.forward(x)[..., :support]
    level = float(mel_of(modulus(spectrum)).sum())
    spectrum = spectrum * (float(target.sum()) / max(level, 1e-30))

    # 3. Iterate: consistency (inverse + forward STFT), then the mel-constrained magnitude: the consistent
    #    spectrum's own magnitude times per-bin gains from the mel ratio, on the phase extrapolated with
    #    momentum.
    alpha = momentum / (1.0 + momentum)
    full = torch.zeros(batch, frames, n // 2 + 1, device=target.device, dtype=spectrum.dtype)
    previous = None
    compiled = _compiled_for(target) and num_iters > 0
    if compiled:  # the magnitude step fused in one compiled pass (same arithmetic as the torch one below)
        from riffusion.phase_kernels import mel_constrained_update

        goal_rows = (target.transpose(1, 2).reshape(-1, target.shape[1]) + eps).contiguous().numpy()
        update = full[..., :support].reshape(-1, support).numpy()  # written in place
    full[..., :support] = spectrum
    for _ in range(num_iters):
        rebuilt = stft.forward(stft.inverse(full, natural))[..., :support]
        if compiled:
            last = rebuilt if previous is None else previous
            _launch(
                mel_constrained_update, rebuilt.reshape(-1, support).numpy(), last.reshape(-1, support).numpy(),
                np.float32(0.0 if previous is None else alpha), goal_rows, np.float32(eps), *by_bin, update,
            )
            previous = rebuilt
            continue
        angles = rebuilt.clone() if previous is None else torch.sub(rebuilt, previous, alpha=alpha)
        previous = rebuilt
        magnitude = modulus(rebuilt)
        ratio = mel_of(magnitude).add_(eps).reciprocal_().mul_(goal + eps)
        gains = (back @ ratio).reshape(support, batch, frames).permute(1, 2, 0)
        parts = torch.view_as_real(angles)
        scale = torch.addcmul(parts[..., 0].square(), parts[..., 1], parts[..., 1])
        scale = scale.add_(_EPS * _EPS).rsqrt_().mul_(magnitude).mul_(gains)
        full[..., :support] = torch.view_as_complex(parts.mul_(scale.unsqueeze(-1)))
    return stft.inverse(full, length).reshape(*batch_shape, length)


# --- a lower sample rate for band-limited spectra -----------------------------------------------------


def _smooth(n: int, primes: tuple[int, ...] = (2, 3, 5, 7)) -> bool:
    for p in primes:
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
    original rate by exact band-limited (FFT) interpolation (:func:`_upsample`).

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
        (so its leakage does not fold back into them), with integer lengths, an FFT size with no prime
        factor above 7, and the window at the same place in its frame; ``None`` when none saves 10 % or more.
    """
    need = bins + 4 * max(1, n_fft // win_length)  # Hann main lobe: +-2 bins of the unpadded grid
    for hop in range(max(1, (2 * (need - 1) * hop_length + n_fft - 1) // n_fft), hop_length):
        if 10 * hop > 9 * hop_length:
            break
        if (n_fft * hop) % hop_length or (win_length * hop) % hop_length:
            continue
        n, win = n_fft * hop // hop_length, win_length * hop // hop_length
        if n % 2 or n // 2 + 1 < need or not _smooth(n) or win < 2:
            continue
        centre, full_centre = n // 2 - _window_offset(n, win), n_fft // 2 - _window_offset(n_fft, win_length)
        if centre * hop_length != full_centre * hop:
            continue  # the window centre must scale too (it does whenever the paddings are even)
        return n, hop, win
    return None


def _upsample(waveform: torch.Tensor, hop: int, hop_length: int, frames: int, pad_frames: int = 4) -> torch.Tensor:
    """Band-limited interpolation of (batch, hop * (frames - 1)) samples to hop_length / hop times the rate.

    Zero-padding the spectrum (an exact sinc interpolation of a periodic signal); the ends are extended by
    odd reflection first, ``pad_frames`` hops on each side, faded to zero, so neither the ends nor the
    periodic wrap have a jump to ring into the clip.
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


# --- methods ------------------------------------------------------------------------------------------


def _griffin_lim_method(magnitude, *, n_fft, hop_length, win_length, num_iters, generator, length):
    num_iters = GRIFFIN_LIM_ITERS if num_iters is None else num_iters
    return _griffin_lim(magnitude, n_fft, hop_length, win_length, num_iters, 0.99, None, generator, length, False)


def _pghi_gl(magnitude, *, n_fft, hop_length, win_length, num_iters, length):
    batch_shape = magnitude.shape[:-2]
    mag = magnitude.reshape(-1, *magnitude.shape[-2:])
    length = hop_length * (mag.shape[-1] - 1) if length is None else int(length)
    n, r = compact_geometry(n_fft, win_length)
    mag = mag[:, ::r].transpose(1, 2).contiguous()  # (batch, frames, bins)
    phase = _pghi_frames_major(mag, n, hop_length, win_length, 1e-5, HANN_GAMMA_RATIO * win_length**2)
    stft = _stft(n, hop_length, win_length, str(mag.device))
    waveform = _fgla(stft, mag, torch.polar(mag, phase), num_iters, 0.99, length)
    return waveform.reshape(*batch_shape, length)


def _pghi_method(magnitude, *, n_fft, hop_length, win_length, num_iters, generator, length):
    return _pghi_gl(
        magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length, num_iters=0, length=length
    )


def _pghi_griffin_lim_method(magnitude, *, n_fft, hop_length, win_length, num_iters, generator, length):
    return _pghi_gl(
        magnitude,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        num_iters=PGHI_GL_ITERS if num_iters is None else num_iters,
        length=length,
    )


def mel_griffin_lim_iters(n_fft: int, win_length: int) -> tuple[int, int]:
    """Default (linear warm-up, mel-constrained) iterations of ``"mel-griffin-lim"`` for a geometry."""
    if compact_geometry(n_fft, win_length)[1] > 1:
        return MEL_GL_WARMUP_ITERS, MEL_GL_ITERS
    return MEL_GL_WARMUP_ITERS_UNPADDED, MEL_GL_ITERS_UNPADDED


def _mel_griffin_lim_method(magnitude, *, n_fft, hop_length, win_length, num_iters, generator, length, mel, mel_basis):
    warmup, iters = mel_griffin_lim_iters(n_fft, win_length)
    init = _pghi_gl(
        magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length, num_iters=warmup, length=None
    )
    return mel_griffin_lim(
        mel, mel_basis, n_fft=n_fft, hop_length=hop_length, win_length=win_length, init=init,
        num_iters=iters if num_iters is None else num_iters, length=length,
    )


METHODS: dict[str, T.Callable[..., torch.Tensor]] = {
    "griffin-lim": _griffin_lim_method,
    "pghi": _pghi_method,
    "pghi+griffin-lim": _pghi_griffin_lim_method,
}
"""Phase reconstruction methods by name. Each is called as ``fn(magnitude, *, n_fft, hop_length,
win_length, num_iters, generator, length)`` on a validated float32 magnitude (``num_iters=None``: the
method's own default). Register new ones here."""

MEL_METHODS: dict[str, T.Callable[..., torch.Tensor]] = {
    "mel-griffin-lim": _mel_griffin_lim_method,
}
"""Methods that also need the mel spectrogram the magnitude came from: called like :data:`METHODS` with
``mel=`` and ``mel_basis=`` added."""

REDUCED_RATE_METHODS = frozenset({"pghi", "pghi+griffin-lim", "mel-griffin-lim"})
"""Methods that may run at a lower sample rate for band-limited input (``reduced_rate=``). Not
``"griffin-lim"``: it stays the original's algorithm, step for step."""

DEFAULT_METHOD = "mel-griffin-lim"
"""What ``method="default"`` means when the mel spectrogram is known (every image -> audio path): the best
sound that stays fast (see bench/bench_phase.py)."""
LINEAR_DEFAULT_METHOD = "pghi+griffin-lim"
"""What ``method="default"`` means for a bare linear magnitude."""


ITERATIVE_METHODS = frozenset({"griffin-lim", "pghi+griffin-lim", "mel-griffin-lim", "default"})
"""Names that take an iteration count, as ``num_iters=`` or in a spec ``"name:iterations"``."""


def method_names() -> list[str]:
    """Every name ``method=`` / ``--phase`` accepts, ``"default"`` last."""
    return [*METHODS, *MEL_METHODS, "default"]


def parse_method(spec: str) -> tuple[str, T.Optional[int]]:
    """Split a phase method spec, ``"name"`` or ``"name:iterations"``, into its name and iterations.

    The string form lets every place that names a method as text (``--phase`` on the CLI, the server's
    ``phase`` setting) also choose its iterations, as ``"cuda:1"`` picks a device:
    ``"mel-griffin-lim:96"`` runs 96 mel-constrained iterations (more sound quality, more time; see
    bench/bench_phase.py), ``"griffin-lim:64"`` 64 from random phase.

    Parameters
    ----------
    spec : str
        A name of :func:`method_names`, optionally followed by ``:`` and a non-negative integer; only the
        iterative methods (:data:`ITERATIVE_METHODS`) take one.

    Returns
    -------
    (name, iterations) : tuple of str and int or None
        ``None`` when the spec gives no iterations (the method's default).

    Raises
    ------
    ValueError
        For an unknown name, iterations that are not a non-negative integer, or iterations on a method
        that does not iterate (``"pghi"``).
    """
    if not isinstance(spec, str):
        raise ValueError(f"phase method must be a string like 'mel-griffin-lim' or 'mel-griffin-lim:96', got {spec!r}")
    name, sep, count = spec.partition(":")
    if name not in method_names():
        raise ValueError(f"unknown phase method {spec!r}; expected one of {', '.join(method_names())}, "
                         "optionally with ':iterations' (e.g. 'mel-griffin-lim:96')")
    if not sep:
        return name, None
    if not count.isdigit() or not count.isascii():
        raise ValueError(f"phase iterations must be a non-negative integer, got {count!r} in {spec!r}")
    if name not in ITERATIVE_METHODS:
        raise ValueError(f"phase method {name!r} does not iterate, so {spec!r} cannot set iterations; "
                         f"iterative methods: {', '.join(sorted(ITERATIVE_METHODS))}")
    return name, int(count)


def reconstruct_waveform(
    magnitude: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    method: str = "default",
    num_iters: T.Optional[int] = None,
    generator: T.Optional[torch.Generator] = None,
    length: T.Optional[int] = None,
    mel: T.Optional[torch.Tensor] = None,
    mel_basis: T.Optional[torch.Tensor] = None,
    reduced_rate: bool = True,
) -> torch.Tensor:
    """Waveform whose STFT magnitude matches ``magnitude``, by the named phase reconstruction method.

    Parameters
    ----------
    magnitude : torch.Tensor, shape (..., n_fft // 2 + 1, frames)
        Linear STFT magnitude (not power, not dB), float32, on any device; leading dimensions (clips,
        channels) are processed as one batch.
    n_fft, hop_length, win_length : int, keyword-only
        STFT geometry in samples: a Hann window of ``win_length`` centred in an ``n_fft`` frame, frames
        ``hop_length`` apart, centred STFT with reflect padding.
    method : str
        A key of :data:`METHODS` (``"griffin-lim"``, ``"pghi"``, ``"pghi+griffin-lim"``), of
        :data:`MEL_METHODS` (``"mel-griffin-lim"``, needs ``mel`` and ``mel_basis``) or ``"default"``:
        :data:`DEFAULT_METHOD` when ``mel`` is given, else :data:`LINEAR_DEFAULT_METHOD`. An iterative one
        may carry its iterations, ``"mel-griffin-lim:96"`` (:func:`parse_method`).
    num_iters : int, optional
        Griffin-Lim iterations of iterative methods; ``None`` uses the method's default (32 for
        ``"griffin-lim"``, :data:`PGHI_GL_ITERS` after PGHI, for ``"mel-griffin-lim"`` the mel-constrained
        ones of :func:`mel_griffin_lim_iters`). Ignored by ``"pghi"``. Must agree with iterations given in
        ``method``.
    generator : torch.Generator, optional
        Randomness for methods that start from random phase (``"griffin-lim"``); pass one for repeatable
        audio. The PGHI methods are deterministic.
    length : int, optional
        Output length in samples; default ``hop_length * (frames - 1)``.
    mel, mel_basis : torch.Tensor, optional
        The mel spectrogram ``magnitude`` was computed from, shape (..., n_mels, frames) like
        ``magnitude``, and its filterbank (n_mels, n_fft // 2 + 1), for :data:`MEL_METHODS`.
    reduced_rate : bool
        For the methods in :data:`REDUCED_RATE_METHODS`: when the magnitude (and filterbank) stop well
        below the Nyquist frequency, as a Riffusion image does at 10 kHz, work at the lowest sample rate
        that holds them, with the same frames and bin frequencies (:func:`reduced_rate_geometry`), and
        interpolate the waveform back (about twice as fast for Riffusion images). ``False``: at the
        input rate throughout.

    Returns
    -------
    torch.Tensor, shape (..., length), float32, same device and units as ``magnitude``

    Raises
    ------
    ValueError
        For an unknown method name or a bad iteration spec, a mel method without ``mel``, a magnitude of
        the wrong shape or with NaN/inf, or invalid geometry.
    """
    name, spec_iters = parse_method(method)
    if spec_iters is not None:
        if num_iters is not None and num_iters != spec_iters:
            raise ValueError(f"phase method {method!r} sets {spec_iters} iterations but num_iters={num_iters}")
        num_iters = spec_iters
    if name == "default":
        name = DEFAULT_METHOD if mel is not None and mel_basis is not None else LINEAR_DEFAULT_METHOD
    if name in MEL_METHODS and (mel is None or mel_basis is None):
        raise ValueError(
            f"phase method {name!r} needs the mel spectrogram and its filterbank (mel=, mel_basis=); "
            "riffusion.spectral.mel_to_waveform passes them"
        )
    magnitude = _check_magnitude(magnitude, n_fft, hop_length, win_length)
    if num_iters is not None and num_iters < 0:
        raise ValueError(f"num_iters must be >= 0, got {num_iters}")
    if length is not None and length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    extra = {}
    if name in MEL_METHODS:
        mel = torch.as_tensor(mel).to(device=magnitude.device, dtype=torch.float32)
        if mel.shape[:-2] != magnitude.shape[:-2] or mel.shape[-1] != magnitude.shape[-1]:
            raise ValueError(
                f"mel {tuple(mel.shape)} must have the leading dimensions and frames of magnitude "
                f"{tuple(magnitude.shape)}"
            )
        # the basis stays where it is: its operators are derived once and cached per device
        extra = {"mel": mel, "mel_basis": torch.as_tensor(mel_basis)}
    fn = METHODS.get(name) or MEL_METHODS[name]
    geometry = None
    if reduced_rate and name in REDUCED_RATE_METHODS:
        bins = _support(magnitude.amax(-1).reshape(-1, magnitude.shape[-2]).amax(0))
        if extra:
            bins = max(bins, _support(extra["mel_basis"].detach().abs().sum(0)))
        geometry = reduced_rate_geometry(n_fft, hop_length, win_length, bins)
    if geometry is None:
        return fn(magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length, num_iters=num_iters,
                  generator=generator, length=length, **extra)
    # The same frames and bin frequencies at a lower rate, then back by band-limited interpolation. The
    # STFT of a signal scales with the window's sum, so the result is scaled by win' / win_length.
    n, hop, win = geometry
    if extra:
        extra["mel_basis"] = extra["mel_basis"][:, : n // 2 + 1]
    frames = magnitude.shape[-1]
    low = fn(magnitude[..., : n // 2 + 1, :], n_fft=n, hop_length=hop, win_length=win, num_iters=num_iters,
             generator=generator, length=hop * (frames - 1), **extra)
    batch_shape = low.shape[:-1]
    waveform = _upsample(low.reshape(-1, low.shape[-1]), hop, hop_length, frames).mul_(win / win_length)
    length = hop_length * (frames - 1) if length is None else int(length)
    if waveform.shape[-1] >= length:
        waveform = waveform[..., :length]
    else:
        waveform = torch.nn.functional.pad(waveform, (0, length - waveform.shape[-1]))
    return waveform.reshape(*batch_shape, length)
