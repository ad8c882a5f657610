"""Phase reconstruction: a waveform from a linear STFT magnitude.

A Riffusion image stores only magnitudes. To hear it we need a phase for every time-frequency point. This
module offers, by name:

``"griffin-lim"``
    Fast Griffin-Lim (Perraudin, Balazs & Søndergaard, 2013): alternating projections with momentum 0.99,
    starting from random phase drawn from ``generator``. What the original Riffusion used (32 iterations).

All methods take the magnitude of a centred STFT whose Hann window of ``win_length`` samples sits in the
middle of an ``n_fft`` frame (``torch.stft(..., window=hann(win_length), center=True)``) and return the
waveform whose STFT magnitude best matches it.
"""

from __future__ import annotations

import functools
import typing as T

import torch

__all__ = ["METHODS", "reconstruct_waveform", "griffin_lim", "DEFAULT_METHOD"]

_EPS = 1e-16


@functools.lru_cache(maxsize=16)
def _window(win_length: int, device: str) -> torch.Tensor:
    """Periodic Hann window, cached per length and device (read-only)."""
    return torch.hann_window(win_length, device=device)


def _check_magnitude(magnitude: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
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
    return magnitude


class _Stft(T.NamedTuple):
    """STFT geometry plus the cached window, with forward and inverse transforms on (batch, bins, frames)."""

    n_fft: int
    hop_length: int
    win_length: int
    window: torch.Tensor

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.stft(
            waveform,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            onesided=True,
            return_complex=True,
        )

    def inverse(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(
            spectrum,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            length=length,
        )


def griffin_lim(
    magnitude: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    num_iters: int = 32,
    momentum: float = 0.99,
    init_phase: T.Optional[torch.Tensor] = None,
    generator: T.Optional[torch.Generator] = None,
    length: T.Optional[int] = None,
) -> torch.Tensor:
    """Fast Griffin-Lim: iterate STFT-consistency and magnitude projections with momentum.

    Perraudin, Balazs & Søndergaard, "A fast Griffin-Lim algorithm", WASPAA 2013; Griffin & Lim, 1984.

    Parameters
    ----------
    magnitude : torch.Tensor, shape (..., n_fft // 2 + 1, frames)
        Linear STFT magnitude (any units), float32, any device.
    n_fft, hop_length, win_length : int, keyword-only
        STFT geometry in samples.
    num_iters : int
        Iterations (each one inverse and one forward STFT). ``0`` returns the initial estimate.
    momentum : float
        Fast Griffin-Lim acceleration in [0, 1); 0 is the classic algorithm.
    init_phase : torch.Tensor, optional
        Initial phase in radians, shape of ``magnitude`` (or broadcastable). Default: uniform random
        phase in [0, 2 pi) drawn from ``generator``.
    generator : torch.Generator, optional
        Source of the random initial phase; same seed, same audio. Must live on ``magnitude``'s device.
    length : int, optional
        Output length in samples (default ``hop_length * (frames - 1)``).

    Returns
    -------
    torch.Tensor, shape (..., length), float32, in the units of ``magnitude``
    """
    magnitude = _check_magnitude(magnitude, n_fft, hop_length, win_length)
    if num_iters < 0:
        raise ValueError(f"num_iters must be >= 0, got {num_iters}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    batch_shape = magnitude.shape[:-2]
    mag = magnitude.reshape(-1, *magnitude.shape[-2:])
    length = hop_length * (mag.shape[-1] - 1) if length is None else int(length)
    stft = _Stft(n_fft, hop_length, win_length, _window(win_length, str(mag.device)))

    if init_phase is None:
        init_phase = torch.rand(mag.shape, generator=generator, device=mag.device, dtype=mag.dtype)
        init_phase = init_phase.mul_(2 * torch.pi)
    else:
        init_phase = torch.as_tensor(init_phase, device=mag.device, dtype=mag.dtype)
        init_phase = init_phase.expand(*batch_shape, *mag.shape[-2:]).reshape(mag.shape)
    spectrum = torch.polar(mag, init_phase)

    alpha = momentum / (1.0 + momentum)
    previous = None
    for _ in range(num_iters):
        rebuilt = stft.forward(stft.inverse(spectrum, length))
        angles = rebuilt if previous is None else rebuilt - alpha * previous
        spectrum = angles.mul_(mag / angles.abs().add_(_EPS))
        previous = rebuilt
    waveform = stft.inverse(spectrum, length)
    return waveform.reshape(*batch_shape, length)


def _griffin_lim_method(magnitude, *, n_fft, hop_length, win_length, num_iters, generator, length):
    return griffin_lim(
        magnitude,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        num_iters=32 if num_iters is None else num_iters,
        generator=generator,
        length=length,
    )


METHODS: dict[str, T.Callable[..., torch.Tensor]] = {
    "griffin-lim": _griffin_lim_method,
}
"""Phase reconstruction methods by name. Each is called as ``fn(magnitude, *, n_fft, hop_length,
win_length, num_iters, generator, length)`` (``num_iters=None``: the method's own default)."""

DEFAULT_METHOD = "griffin-lim"
"""What ``method="default"`` means: the best sound that stays fast (see bench/bench_phase.py)."""


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
        A key of :data:`METHODS`, or ``"default"`` (:data:`DEFAULT_METHOD`).
    num_iters : int, optional
        Griffin-Lim iterations for iterative methods; ``None`` uses the method's default.
    generator : torch.Generator, optional
        Randomness for methods that need it (random initial phase); pass one for repeatable audio.
    length : int, optional
        Output length in samples; default ``hop_length * (frames - 1)``.

    Returns
    -------
    torch.Tensor, shape (..., length), float32, same device and units as ``magnitude``

    Raises
    ------
    ValueError
        For an unknown method name, a magnitude of the wrong shape, or invalid geometry.
    """
    name = DEFAULT_METHOD if method == "default" else method
    if name not in METHODS:
        raise ValueError(f"unknown phase method {method!r}; expected one of {sorted([*METHODS, 'default'])}")
    magnitude = _check_magnitude(magnitude, n_fft, hop_length, win_length)
    if num_iters is not None and num_iters < 0:
        raise ValueError(f"num_iters must be >= 0, got {num_iters}")
    if length is not None and length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    return METHODS[name](
        magnitude,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        num_iters=num_iters,
        generator=generator,
        length=length,
    )
