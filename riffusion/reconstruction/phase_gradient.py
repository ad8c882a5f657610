"""Phase-gradient heap integration (PGHI): phase from an STFT magnitude without iterations.

Průša, Balazs & Søndergaard, "A noniterative method for reconstruction of phase from STFT magnitude",
IEEE/ACM TASLP 25(5), 2017; the real-time (causal) order after Průša & Holighaus, EUSIPCO 2017.
:func:`pghi` is the public algorithm on ``torch.stft``-shaped magnitudes; :func:`pghi_frames_major`
is the same on the frames-major layout the Griffin-Lim loop uses.
"""

from __future__ import annotations

import functools
import typing as T

import torch

from riffusion.stft import TWO_PI, check_magnitude, occupied_bins, window_offset

__all__ = ["pghi", "pghi_frames_major", "HANN_GAMMA_RATIO", "TOLERANCE"]

#: Hann window's Gaussian-equivalent time-frequency spread, lambda = ratio * win_length**2 (Průša 2017).
HANN_GAMMA_RATIO = 0.25645
#: Magnitudes below this fraction of a clip's maximum count as silence.
TOLERANCE = 1e-5


def pghi(
    magnitude: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    tolerance: float = TOLERANCE,
    gamma: T.Optional[float] = None,
    causal: bool = False,
) -> torch.Tensor:
    """Phase from magnitude by phase-gradient heap integration (PGHI).

    For a Gaussian window the phase gradient follows from the log-magnitude gradient; the Hann window is
    treated as a Gaussian of spread ``lambda = 0.25645 * win_length**2``. By default the phase is
    integrated in the paper's offline heap order, over the whole spectrogram at once
    (:func:`riffusion.phase_kernels.integrate_phase`, compiled, on the CPU): it flows along ridges of
    large magnitude backwards in time too, e.g. from an onset into the quiet frames before it.
    ``causal=True`` gives the real-time variant's order, frame by frame from the previous one, found
    with vectorised widest-path scans on any device; it suits streaming but is worse offline
    (``python bench/bench_phase.py`` compares the methods on real music).

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

    Raises
    ------
    ValueError
        For a bad magnitude or geometry, ``tolerance`` outside (0, 1) or ``gamma <= 0``.
    """
    magnitude = check_magnitude(magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length)
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance}")
    lam = HANN_GAMMA_RATIO * win_length**2 if gamma is None else float(gamma)
    if lam <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    frames_major = magnitude.reshape(-1, *magnitude.shape[-2:]).transpose(1, 2).contiguous()
    phase = pghi_frames_major(frames_major, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                              tolerance=tolerance, gamma=lam, causal=causal)
    return phase.transpose(1, 2).reshape(magnitude.shape)


def pghi_frames_major(
    magnitude: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    tolerance: float = TOLERANCE,
    gamma: T.Optional[float] = None,
    causal: bool = False,
) -> torch.Tensor:
    """:func:`pghi` on a validated frames-major magnitude.

    Parameters
    ----------
    magnitude : torch.Tensor, shape (batch, frames, bins)
    n_fft, hop_length, win_length, tolerance, gamma, causal
        As in :func:`pghi`.

    Returns
    -------
    torch.Tensor, shape (batch, frames, bins)
        Phase in radians in ``torch.stft``'s convention.
    """
    lam = HANN_GAMMA_RATIO * win_length**2 if gamma is None else float(gamma)
    bins = magnitude.shape[-1]
    # Bins silent in every clip and frame (e.g. above the mel range) need no integration.
    loudest = magnitude.amax(dim=(0, 1))
    support = min(bins, occupied_bins(loudest) + 1) if bool((loudest > 0).any()) else 1  # + 1: gradients there
    phase = torch.zeros_like(magnitude)
    if support >= 2:
        phase[..., :support] = _integrate(magnitude[..., :support].contiguous(), n_fft, hop_length, win_length,
                                          tolerance, lam, causal)
    _, shift = _bin_constants(n_fft, hop_length, win_length, bins, str(magnitude.device))
    return phase.sub_(shift).remainder_(TWO_PI)


@functools.lru_cache(maxsize=16)
def _bin_constants(n_fft: int, hop_length: int, win_length: int, bins: int, device: str):
    """Per bin: the phase advance over one hop, and the shift from window-centre to frame-start phase."""
    k = torch.arange(bins, dtype=torch.float64)
    # both reduced mod 2 pi in float64 so that large k * hop products keep their precision
    advance = TWO_PI * torch.remainder(k * hop_length, n_fft) / n_fft
    centre2 = 2 * window_offset(n_fft, win_length) + win_length  # twice the window centre in the frame
    shift = TWO_PI * torch.remainder(k * centre2, 2 * n_fft) / (2 * n_fft)
    return advance.to(device=device, dtype=torch.float32), shift.to(device=device, dtype=torch.float32)


def _integrate(
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
    step_time = (deviation[:, 1:] + deviation[:, :-1]).mul_(0.5).add_(advance).remainder_(TWO_PI)
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
        return out.remainder_(TWO_PI).to(device=s.device, dtype=s.dtype)
    along_freq = torch.zeros_like(s)
    torch.cumsum(step_freq, dim=-1, out=along_freq[..., 1:])
    # 3. Causal: integration paths; each coefficient's root bin, whose phase comes from the previous frame.
    root = _integration_roots(s)
    offset = along_freq.sub_(torch.gather(along_freq, -1, root)).remainder_(TWO_PI)
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
            out[m].remainder_(TWO_PI)
    return out.transpose(0, 1)


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

    Real-time PGHI processes frame ``m`` with a max-heap seeded by frame ``m - 1``: every coefficient
    takes its phase from the first popped neighbour, i.e. along the path of largest magnitudes. On the
    (previous frame -> bin, bin <-> adjacent bin) graph that is the widest path, found here for all
    frames at once by two bottleneck scans. Each coefficient's path runs monotonically in frequency to a
    *root* bin integrated in time; the result holds its index.
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
