"""Fast Griffin-Lim whose magnitude constraint is a mel spectrogram, not a linear magnitude.

:func:`mel_griffin_lim` refines a starting waveform against the mel spectrogram itself, which is all a
Riffusion image fixes.
"""

from __future__ import annotations

import collections
import typing as T

import numpy as np
import scipy.sparse
import torch

from riffusion import kernel_launch
from riffusion.reconstruction.fast_griffin_lim import MOMENTUM, modulus, with_magnitude
from riffusion.stft import coarser_fft_size, occupied_bins, sparse_csr, stft_engine

__all__ = ["mel_griffin_lim", "MEL_GL_ITERS"]

#: Mel-constrained iterations of the ``"mel-griffin-lim"`` method for a zero-padded window (see
#: :func:`riffusion.reconstruction.mel_griffin_lim_iters`; chosen with ``python bench/bench_phase.py``).
MEL_GL_ITERS = 20

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
    support = occupied_bins(weight)
    basis, weight = basis[:, :support], weight[:support]
    back = (basis / weight.clamp_min(1e-30)).T.contiguous()
    # by bin, for the compiled CPU update
    by_bin = scipy.sparse.csr_matrix(basis.T.numpy())
    by_bin.sort_indices()
    start, mels, to_mel = by_bin.indptr, by_bin.indices, by_bin.data
    rows = np.repeat(np.arange(support), np.diff(start))
    to_bin = to_mel / weight.numpy()[rows]
    kernel = (start.astype(np.int64), mels.astype(np.int64), to_mel.astype(np.float32), to_bin.astype(np.float32))
    value = (sparse_csr(basis, device), sparse_csr(back, device), support, kernel)
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
    n_iter: int = MEL_GL_ITERS,
    momentum: float = MOMENTUM,
    length: T.Optional[int] = None,
) -> torch.Tensor:
    """Fast Griffin-Lim whose magnitude constraint is a mel spectrogram, not a linear magnitude.

    A Riffusion image fixes only the mel projection ``mel_basis @ |STFT|``; an inverse mel picks one
    linear magnitude among the many with that projection, and usually not one that any signal has, which
    is what limits Griffin-Lim on it. Here each iteration keeps the consistent spectrum's own magnitude
    and rescales it by the mel-domain ratio ``mel / (mel_basis @ |STFT|)`` spread back over the bins
    through the filterbank (a multiplicative projection in the manner of Lee & Seung's NMF updates), then
    the usual fast Griffin-Lim step follows (Perraudin et al., 2013). The STFT runs with half the FFT
    size when the window allows (:func:`riffusion.stft.coarser_fft_size`; for Riffusion's 4x zero-padded
    window, 2x padding: the mel of the full grid is read from it by interpolation), so an iteration costs
    about two compact Griffin-Lim iterations.

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
    n_iter : int
        Iterations; 0 returns ``init`` rescaled.
    momentum : float
        Fast Griffin-Lim acceleration in [0, 1).
    length : int, optional
        Output length in samples (default ``hop_length * (frames - 1)``).

    Returns
    -------
    torch.Tensor, shape (..., length), float32, in the units of ``mel``

    Raises
    ------
    ValueError
        For shapes of ``mel``, ``mel_basis`` or ``init`` that do not fit, ``n_iter < 0`` or a momentum
        outside [0, 1).
    """
    mel, mel_basis = torch.as_tensor(mel), torch.as_tensor(mel_basis)
    if mel.ndim < 2 or mel_basis.ndim != 2 or mel_basis.shape != (mel.shape[-2], n_fft // 2 + 1):
        raise ValueError(
            f"mel must be (..., n_mels, frames) and mel_basis (n_mels, n_fft // 2 + 1 = {n_fft // 2 + 1}); "
            f"got {tuple(mel.shape)} and {tuple(mel_basis.shape)}"
        )
    if n_iter < 0:
        raise ValueError(f"n_iter must be >= 0, got {n_iter}")
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
    n = coarser_fft_size(n_fft, win_length, 2)
    forward, back, support, by_bin = _mel_on_grid(mel_basis, n, n_fft, target.device)
    engine = stft_engine(n, hop_length, win_length, device=target.device)
    natural = hop_length * (frames - 1) + n % 2
    goal = target.permute(1, 0, 2).reshape(target.shape[1], -1)  # (n_mels, batch * frames)
    eps = 1e-7 * float(target.amax()) + 1e-30 if target.numel() else 1e-30

    def mel_of(magnitude: torch.Tensor) -> torch.Tensor:
        """(batch, frames, support) -> (n_mels, batch * frames)."""
        return forward @ magnitude.permute(2, 0, 1).reshape(support, -1)

    # 2. Start from ``init`` at the target's level.
    spectrum = engine.forward(x)[..., :support]
    level = float(mel_of(modulus(spectrum)).sum())
    spectrum = spectrum * (float(target.sum()) / max(level, 1e-30))

    # 3. Iterate: consistency (inverse + forward STFT), then the mel-constrained magnitude: the consistent
    #    spectrum's own magnitude times per-bin gains from the mel ratio, on the phase extrapolated with
    #    momentum. On the CPU the magnitude step is one compiled pass
    #    (:func:`riffusion.phase_kernels.mel_constrained_update`), the same arithmetic as the torch code.
    alpha = momentum / (1.0 + momentum)
    full = torch.zeros(batch, frames, n // 2 + 1, device=target.device, dtype=spectrum.dtype)
    previous = None
    compiled = kernel_launch.runs_compiled(target) and n_iter > 0
    if compiled:
        from riffusion.phase_kernels import mel_constrained_update

        goal_rows = (target.transpose(1, 2).reshape(-1, target.shape[1]) + eps).contiguous().numpy()
        update = full[..., :support].reshape(-1, support).numpy()  # written in place
    full[..., :support] = spectrum
    for _ in range(n_iter):
        rebuilt = engine.forward(engine.inverse(full, natural))[..., :support]
        if compiled:
            last = rebuilt if previous is None else previous
            kernel_launch.launch(
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
        full[..., :support] = with_magnitude(angles, magnitude, gains)
    return engine.inverse(full, length).reshape(*batch_shape, length)
