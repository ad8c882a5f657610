"""Compiled (numba) kernels of phase reconstruction: the work that torch cannot vectorise or fuse.

:func:`integrate_phase` -- heap integration of phase gradients over a whole spectrogram, the
sequential core of offline PGHI; :func:`magnitude_update`, :func:`mel_constrained_update` and
:func:`overlap_add` -- the element-wise steps of (mel-constrained) fast Griffin-Lim, each one pass over
memory where torch makes five to ten, parallel over frames.

Průša, Balazs & Søndergaard, "A noniterative method for reconstruction of phase from STFT magnitude",
IEEE/ACM TASLP 25(5), 2017, Algorithm 1: starting from the loudest coefficient, repeatedly take the
loudest coefficient whose phase is known and give each of its four time-frequency neighbours whose
phase is not yet known a phase by the trapezoid rule along that edge; when none is left, start again
from the loudest coefficient still without one. Phase thus flows along ridges of large magnitude in
both directions of time, unlike the frame-by-frame (real-time) order, which must carry it forward.

The priority queue is a bucket queue on the log-magnitude (65536 levels between the silence floor and
the maximum: steps of ~0.002 dB for a 100 dB range, far finer than any ordering that matters), so each
push and pop costs O(1) instead of a binary heap's O(log n) cache misses; ties pop last-in first-out.
Compiled with numba, cached on disk after the first call.
"""

from __future__ import annotations

import threading

import numba
import numpy as np

PARALLEL_LOCK = threading.Lock()
"""Held around every call of a parallel kernel here (:func:`riffusion.kernel_launch.launch`): numba's fallback
thread pool ("workqueue", used where no OpenMP or TBB runtime is found) aborts the process when two
threads launch kernels at once, and a server may reconstruct two clips at a time. The kernels take
milliseconds; the wait is short."""

LEVELS = 65536
"""Quantisation levels of the log-magnitude priority."""


@numba.njit(cache=True, nogil=True)
def integrate_phase(
    magnitude: np.ndarray, step_time: np.ndarray, step_freq: np.ndarray, floor: float, levels: int = LEVELS
) -> np.ndarray:
    """Integrate phase increments along paths of largest magnitude (heap order of offline PGHI).

    Parameters
    ----------
    magnitude : np.ndarray, shape (frames, bins), float32
        Non-negative magnitudes: the priority of each coefficient.
    step_time : np.ndarray, shape (frames - 1, bins), float32
        Phase increment in radians from frame ``m`` to ``m + 1`` of each bin.
    step_freq : np.ndarray, shape (frames, bins - 1), float32
        Phase increment in radians from bin ``k`` to ``k + 1`` of each frame.
    floor : float
        Coefficients at or below it are silence: never integrated, phase 0.
    levels : int
        Priority quantisation levels.

    Returns
    -------
    np.ndarray, shape (frames, bins), float64
        Unwrapped phase in radians; 0 at each seed (the loudest coefficient of each connected region).
    """
    frames, bins = magnitude.shape
    size = frames * bins
    flat = magnitude.ravel()
    phase = np.zeros(size)
    known = np.zeros(size, np.bool_)
    peak = floor
    for i in range(size):
        if flat[i] > peak:
            peak = flat[i]
    low = np.log(max(floor, 1e-38))
    scale = (levels - 1) / max(np.log(peak) - low, 1e-12)
    level = np.empty(size, np.int32)
    count = np.zeros(levels, np.int64)
    todo = 0
    for i in range(size):
        if flat[i] <= floor:
            known[i] = True
            level[i] = -1
        else:
            q = min(levels - 1, int((np.log(flat[i]) - low) * scale))
            level[i] = q
            count[q] += 1
            todo += 1
    # 1. Seed order: all coefficients by decreasing level (a counting sort).
    start = np.zeros(levels, np.int64)
    total = 0
    for q in range(levels - 1, -1, -1):
        start[q] = total
        total += count[q]
    seeds = np.empty(total, np.int64)
    for i in range(size):
        q = level[i]
        if q >= 0:
            seeds[start[q]] = i
            start[q] += 1
    # 2. The bucket queue: one linked list per level, ``top`` at or above the highest non-empty one.
    head = np.full(levels, -1, np.int64)
    after = np.empty(size, np.int64)
    top = -1
    next_seed = 0
    while todo > 0:
        while top >= 0 and head[top] < 0:
            top -= 1
        if top < 0:  # 3. Nothing known borders the rest: the loudest coefficient left starts anew.
            while known[seeds[next_seed]]:
                next_seed += 1
            i = seeds[next_seed]
            known[i] = True
            todo -= 1
            top = level[i]
            after[i] = head[top]
            head[top] = i
            continue
        # 4. Pop the loudest known coefficient; its unknown neighbours get their phase from it.
        i = head[top]
        head[top] = after[i]
        m = i // bins
        k = i - m * bins
        here = phase[i]
        for direction in range(4):
            if direction == 0:
                if m + 1 >= frames:
                    continue
                j = i + bins
                value = here + step_time[m, k]
            elif direction == 1:
                if m == 0:
                    continue
                j = i - bins
                value = here - step_time[m - 1, k]
            elif direction == 2:
                if k + 1 >= bins:
                    continue
                j = i + 1
                value = here + step_freq[m, k]
            else:
                if k == 0:
                    continue
                j = i - 1
                value = here - step_freq[m, k - 1]
            if known[j]:
                continue
            phase[j] = value
            known[j] = True
            todo -= 1
            q = level[j]
            after[j] = head[q]
            head[q] = j
            if q > top:
                top = q
    return phase.reshape(frames, bins)


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def mel_constrained_update(
    rebuilt: np.ndarray,
    previous: np.ndarray,
    alpha: float,
    goal: np.ndarray,
    eps: float,
    bin_start: np.ndarray,
    bin_mel: np.ndarray,
    to_mel: np.ndarray,
    to_bin: np.ndarray,
    out: np.ndarray,
) -> None:
    """One magnitude step of mel-constrained fast Griffin-Lim, fused, frame by frame in parallel.

    For each frame (row): the consistent spectrum's magnitude ``|rebuilt|``, its mel projection, the
    ratio ``goal / mel``, spread back to per-bin gains; then ``out = a * |rebuilt| * gain / |a|`` with
    the momentum-extrapolated ``a = rebuilt - alpha * previous``. The same arithmetic as the torch path
    of :func:`riffusion.reconstruction.mel_griffin_lim` in one pass over memory instead of about ten.

    Parameters
    ----------
    rebuilt, previous : np.ndarray, shape (rows, bins), complex64
        This iteration's and the last iteration's consistent spectra (any strides).
    alpha : float
        Momentum weight ``momentum / (1 + momentum)`` (0 on the first iteration).
    goal : np.ndarray, shape (rows, n_mels), float32
        Target mel magnitudes plus ``eps``.
    eps : float
        Added to the projected mel before dividing.
    bin_start, bin_mel, to_mel, to_bin : np.ndarray
        The filterbank by bin (compressed rows of its transpose): bin ``k`` feeds mel filters
        ``bin_mel[bin_start[k]:bin_start[k + 1]]`` with weights ``to_mel[...]`` and takes their ratio
        back with weights ``to_bin[...]`` (the filter weight over the bin's total weight).
    out : np.ndarray, shape (rows, bins), complex64
        Written: the next spectrum.
    """
    rows, bins = rebuilt.shape
    n_mels = goal.shape[1]
    tiny = np.float32(1e-32)
    for r in numba.prange(rows):
        ratio = np.zeros(n_mels, np.float32)
        magnitude = np.empty(bins, np.float32)
        for k in range(bins):
            z = rebuilt[r, k]
            a = np.sqrt(z.real * z.real + z.imag * z.imag)
            magnitude[k] = a
            for j in range(bin_start[k], bin_start[k + 1]):
                ratio[bin_mel[j]] += to_mel[j] * a
        for m in range(n_mels):
            ratio[m] = goal[r, m] / (ratio[m] + eps)
        for k in range(bins):
            gain = np.float32(0.0)
            for j in range(bin_start[k], bin_start[k + 1]):
                gain += to_bin[j] * ratio[bin_mel[j]]
            z = rebuilt[r, k] - alpha * previous[r, k]
            out[r, k] = z * (magnitude[k] * gain / np.sqrt(z.real * z.real + z.imag * z.imag + tiny))


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def magnitude_update(
    rebuilt: np.ndarray, previous: np.ndarray, alpha: float, magnitude: np.ndarray, out: np.ndarray
) -> None:
    """One magnitude step of fast Griffin-Lim, fused: ``out = a * magnitude / |a|`` with the
    momentum-extrapolated ``a = rebuilt - alpha * previous`` (Perraudin, Balazs & Søndergaard, 2013).

    Parameters
    ----------
    rebuilt, previous, alpha, out
        As in :func:`mel_constrained_update`.
    magnitude : np.ndarray, shape (rows, bins), float32
        Target magnitudes.
    """
    rows, bins = rebuilt.shape
    tiny = np.float32(1e-32)
    for r in numba.prange(rows):
        for k in range(bins):
            z = rebuilt[r, k] - alpha * previous[r, k]
            out[r, k] = z * (magnitude[r, k] / np.sqrt(z.real * z.real + z.imag * z.imag + tiny))


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def overlap_add(
    blocks: np.ndarray,
    window: np.ndarray,
    first: int,
    hop: int,
    inv_envelope: np.ndarray,
    start: int,
    out: np.ndarray,
) -> None:
    """Windowed overlap-add of inverse-FFT frames, with the least-squares normalisation, fused.

    ``out[i] = inv_envelope[i] * sum_m window[p] * blocks[m, first + p]`` over frames ``m`` whose window
    covers output sample ``start + i`` at position ``p`` (frame ``m`` starts at ``m * hop``).

    Parameters
    ----------
    blocks : np.ndarray, shape (frames, n_fft), float32
        Inverse FFTs of the frames (any strides).
    window : np.ndarray, shape (win_length,), float32
        Synthesis window, a multiple of ``hop`` long, at ``first`` in each block.
    first, hop : int
        Window offset in the block, hop length in samples.
    inv_envelope : np.ndarray, shape (>= len(out),), float32
        ``1 / sum of squared windows`` from ``start`` on.
    start : int
        Index in the full overlap-added signal of ``out[0]``.
    out : np.ndarray, shape (length,), float32
        Written.
    """
    frames = blocks.shape[0]
    count = window.shape[0] // hop
    length = out.shape[0]
    # hop-long output blocks u: samples first + u * hop + q of the full signal, q < hop
    u_low = (start - first) // hop
    u_high = (start + length - 1 - first) // hop
    for u in numba.prange(u_low, u_high + 1):
        total = np.zeros(hop, np.float32)
        for m in range(max(0, u - count + 1), min(frames - 1, u) + 1):
            p = (u - m) * hop
            for q in range(hop):
                total[q] += window[p + q] * blocks[m, first + p + q]
        base = first + u * hop - start
        for q in range(hop):
            i = base + q
            if 0 <= i < length:
                out[i] = total[q] * inv_envelope[i]
