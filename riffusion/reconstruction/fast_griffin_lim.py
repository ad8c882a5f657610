"""Fast Griffin-Lim: a waveform from an STFT magnitude by alternating projections with momentum.

Perraudin, Balazs & Søndergaard, "A fast Griffin-Lim algorithm", WASPAA 2013 (after Griffin & Lim,
1984). :func:`griffin_lim` is the public algorithm; :func:`run_fast_griffin_lim` is its loop on
frames-major spectra, which the PGHI-based methods share.
"""

from __future__ import annotations

import typing as T

import numpy as np
import torch

from riffusion import kernel_launch
from riffusion.stft import (
    TWO_PI,
    Stft,
    check_magnitude,
    compact_geometry,
    compact_phase_ramp,
    occupied_bins,
    stft_engine,
)

__all__ = ["griffin_lim", "run_fast_griffin_lim", "GRIFFIN_LIM_ITERS", "MOMENTUM"]

#: Iterations of the original Riffusion's method.
GRIFFIN_LIM_ITERS = 32
#: Momentum of fast Griffin-Lim, as the original (torchaudio's default).
MOMENTUM = 0.99
#: Added to squared moduli before the reciprocal square root, so a zero coefficient stays zero.
EPS = 1e-16


def modulus(spectrum: torch.Tensor) -> torch.Tensor:
    """``|spectrum|`` computed on the real view (complex abs is slow on the CPU)."""
    parts = torch.view_as_real(spectrum)
    return torch.addcmul(parts[..., 0].square(), parts[..., 1], parts[..., 1]).sqrt_()


def with_magnitude(angles: torch.Tensor, magnitude: torch.Tensor, gains: T.Optional[torch.Tensor] = None) -> torch.Tensor:
    """``magnitude * gains * angles / |angles|``: the phase of ``angles`` (overwritten) with a new modulus."""
    parts = torch.view_as_real(angles)
    scale = torch.addcmul(parts[..., 0].square(), parts[..., 1], parts[..., 1])
    scale = scale.add_(EPS * EPS).rsqrt_().mul_(magnitude)
    if gains is not None:
        scale = scale.mul_(gains)
    return torch.view_as_complex(parts.mul_(scale.unsqueeze(-1)))


def run_fast_griffin_lim(
    engine: Stft,
    magnitude: torch.Tensor,
    spectrum: torch.Tensor,
    *,
    n_iter: int,
    momentum: float,
    length: int,
) -> torch.Tensor:
    """The fast Griffin-Lim loop on frames-major spectra.

    Parameters
    ----------
    engine : riffusion.stft.Stft
        The STFT to iterate with.
    magnitude : torch.Tensor, shape (batch, frames, bins)
        Target magnitude on the engine's grid.
    spectrum : torch.Tensor, shape (batch, frames, bins), complex
        Initial spectrum.
    n_iter : int, keyword-only
        Iterations; 0 returns the inverse of ``spectrum``.
    momentum : float, keyword-only
        Acceleration in [0, 1).
    length : int, keyword-only
        Output length in samples.

    Returns
    -------
    torch.Tensor, shape (batch, length)

    Notes
    -----
    Bins above the highest one with any magnitude stay zero (as the update would keep them), so the
    element-wise work runs on the bins below it only (a Riffusion image stops at 10 kHz: half the grid).
    On the CPU the magnitude step is one compiled pass (:func:`riffusion.phase_kernels.magnitude_update`),
    the same arithmetic as the torch code below.
    """
    alpha = momentum / (1.0 + momentum)
    previous = None
    # the shortest length whose centred STFT has as many frames: keeps the frame count while iterating
    natural = engine.hop_length * (spectrum.shape[1] - 1) + engine.n_fft % 2
    support = occupied_bins(magnitude.reshape(-1, magnitude.shape[-1]).amax(0))
    full = torch.zeros_like(spectrum)
    magnitude, spectrum = magnitude[..., :support], spectrum[..., :support]
    compiled = kernel_launch.runs_compiled(magnitude) and n_iter > 0
    if compiled:
        from riffusion.phase_kernels import magnitude_update

        rows = magnitude.shape[0] * magnitude.shape[1]
        target = magnitude.reshape(rows, support).numpy()
        update = full[..., :support].reshape(rows, support).numpy()  # written in place
    full[..., :support] = spectrum
    for _ in range(n_iter):
        rebuilt = engine.forward(engine.inverse(full, natural))[..., :support]
        if compiled:
            last = rebuilt if previous is None else previous
            kernel_launch.launch(
                magnitude_update, rebuilt.reshape(rows, support).numpy(), last.reshape(rows, support).numpy(),
                np.float32(0.0 if previous is None else alpha), target, update,
            )
            previous = rebuilt
            continue
        angles = rebuilt.clone() if previous is None else torch.sub(rebuilt, previous, alpha=alpha)
        full[..., :support] = with_magnitude(angles, magnitude)
        previous = rebuilt
    return engine.inverse(full, length)


def random_phase(shape, generator: T.Optional[torch.Generator], device, dtype) -> torch.Tensor:
    """Uniform phase in [0, 2 pi), drawn on the generator's device (same seed, same phase anywhere)."""
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=source, dtype=dtype).mul_(TWO_PI).to(device)


def griffin_lim(
    magnitude: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    n_iter: int = GRIFFIN_LIM_ITERS,
    momentum: float = MOMENTUM,
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
    n_iter : int
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
        Iterate on the compact grid of :func:`riffusion.stft.compact_geometry` (every ``r``-th bin of a
        zero-padded STFT): the same frames and window with ``r`` times fewer bins, several times faster
        per iteration, at some cost in how well the skipped bins match.

    Returns
    -------
    torch.Tensor, shape (..., length), float32, in the units of ``magnitude``

    Raises
    ------
    ValueError
        For a bad magnitude or geometry (:func:`riffusion.stft.check_magnitude`), ``n_iter < 0`` or a
        momentum outside [0, 1).
    """
    magnitude = check_magnitude(magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length)
    if n_iter < 0:
        raise ValueError(f"n_iter must be >= 0, got {n_iter}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    batch_shape = magnitude.shape[:-2]
    mag = magnitude.reshape(-1, *magnitude.shape[-2:])
    length = hop_length * (mag.shape[-1] - 1) if length is None else int(length)

    if init_phase is None:
        phase = random_phase(mag.shape, generator, mag.device, mag.dtype)
    else:
        phase = torch.as_tensor(init_phase, device=mag.device, dtype=mag.dtype)
        phase = phase.expand(*batch_shape, *mag.shape[-2:]).reshape(mag.shape)

    n, r = compact_geometry(n_fft, win_length) if compact else (n_fft, 1)
    if r > 1:
        mag = mag[:, ::r]
        phase = phase[:, ::r] + compact_phase_ramp(n_fft, win_length, device=mag.device, dtype=mag.dtype)
    mag = mag.transpose(1, 2).contiguous()  # (batch, frames, bins)
    spectrum = torch.polar(mag, phase.transpose(1, 2))
    engine = stft_engine(n, hop_length, win_length, device=mag.device)
    waveform = run_fast_griffin_lim(engine, mag, spectrum, n_iter=n_iter, momentum=momentum, length=length)
    return waveform.reshape(*batch_shape, length)
