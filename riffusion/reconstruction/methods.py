"""The phase reconstruction methods by name, the typed choice of one, and the dispatcher.

A method is chosen as text where people name it (``--phase`` on the CLI, the server's ``phase``
setting), optionally with its iteration count, ``"mel-griffin-lim:96"``. That text is parsed once, at
the edge, into a :class:`PhaseMethod`, which travels down to :func:`reconstruct_waveform`.

``"griffin-lim"``
    Fast Griffin-Lim on the full STFT grid from random phase drawn from ``generator``, 32 iterations,
    momentum 0.99: what the original Riffusion did.
``"pghi"``
    Phase-gradient heap integration (:mod:`riffusion.reconstruction.phase_gradient`), no iterations.
    Deterministic.
``"pghi+griffin-lim"``
    PGHI phase refined by fast Griffin-Lim (default :data:`PGHI_GL_ITERS` iterations). The default when
    only a linear magnitude is known.
``"mel-griffin-lim"``
    ``"pghi+griffin-lim"``, then fast Griffin-Lim whose magnitude constraint is the *mel* spectrogram
    itself (:func:`riffusion.reconstruction.mel_constrained.mel_griffin_lim`; iteration counts per
    geometry from :func:`mel_griffin_lim_iters`). Needs the mel spectrogram and its filterbank, and is
    the default when they are given (every image -> audio path).

The PGHI-based methods work on the compact grid of a zero-padded window and, for band-limited input, at
a lower sample rate (:mod:`riffusion.stft`). The iteration defaults were chosen with
``python bench/bench_phase.py``, which prints each method's speed and mel consistency on real music.
"""

from __future__ import annotations

import dataclasses
import typing as T

import torch

from riffusion.reconstruction.fast_griffin_lim import GRIFFIN_LIM_ITERS, MOMENTUM, griffin_lim, run_fast_griffin_lim
from riffusion.reconstruction.mel_constrained import MEL_GL_ITERS, mel_griffin_lim
from riffusion.reconstruction.phase_gradient import pghi_frames_major
from riffusion.stft import check_magnitude, compact_geometry, occupied_bins, reduced_rate_geometry, stft_engine, upsample

__all__ = [
    "PhaseMethod",
    "METHODS",
    "MEL_METHODS",
    "REDUCED_RATE_METHODS",
    "ITERATIVE_METHODS",
    "DEFAULT_METHOD",
    "LINEAR_DEFAULT_METHOD",
    "PGHI_GL_ITERS",
    "MEL_GL_WARMUP_ITERS",
    "MEL_GL_ITERS_UNPADDED",
    "MEL_GL_WARMUP_ITERS_UNPADDED",
    "method_names",
    "mel_griffin_lim_iters",
    "reconstruct_waveform",
]

#: Griffin-Lim iterations after PGHI for ``"pghi+griffin-lim"``.
PGHI_GL_ITERS = 24
#: Linear ``"pghi+griffin-lim"`` iterations before the mel-constrained ones of ``"mel-griffin-lim"``
#: (:data:`riffusion.reconstruction.mel_constrained.MEL_GL_ITERS` of those): the best mel consistency
#: that stays 10x faster than the original.
MEL_GL_WARMUP_ITERS = 40
#: The same pair for a window that is not zero-padded (riffusion-small-v1): there the compact grid the
#: linear iterations run on is no smaller than the mel-constrained one, so they cost as much and gain
#: less, and are traded for mel-constrained ones (its clips are short, so these stay cheap).
MEL_GL_ITERS_UNPADDED = 48
MEL_GL_WARMUP_ITERS_UNPADDED = 8


def mel_griffin_lim_iters(n_fft: int, win_length: int) -> tuple[int, int]:
    """Default (linear warm-up, mel-constrained) iterations of ``"mel-griffin-lim"`` for a geometry."""
    if compact_geometry(n_fft, win_length)[1] > 1:
        return MEL_GL_WARMUP_ITERS, MEL_GL_ITERS
    return MEL_GL_WARMUP_ITERS_UNPADDED, MEL_GL_ITERS_UNPADDED


# --- the methods ---------------------------------------------------------------------------------------
# Each is called as fn(magnitude, *, n_fft, hop_length, win_length, n_iter, generator, length) on a
# validated float32 magnitude (n_iter=None: the method's own default); the mel ones also get mel=,
# mel_basis=.


def _pghi_then_griffin_lim(magnitude, *, n_fft, hop_length, win_length, n_iter, length):
    """PGHI on the compact grid, then ``n_iter`` fast Griffin-Lim iterations there."""
    batch_shape = magnitude.shape[:-2]
    mag = magnitude.reshape(-1, *magnitude.shape[-2:])
    length = hop_length * (mag.shape[-1] - 1) if length is None else int(length)
    n, r = compact_geometry(n_fft, win_length)
    mag = mag[:, ::r].transpose(1, 2).contiguous()  # (batch, frames, bins)
    phase = pghi_frames_major(mag, n_fft=n, hop_length=hop_length, win_length=win_length)
    engine = stft_engine(n, hop_length, win_length, device=mag.device)
    waveform = run_fast_griffin_lim(engine, mag, torch.polar(mag, phase), n_iter=n_iter, momentum=MOMENTUM,
                                    length=length)
    return waveform.reshape(*batch_shape, length)


def _griffin_lim_method(magnitude, *, n_fft, hop_length, win_length, n_iter, generator, length):
    return griffin_lim(magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                       n_iter=GRIFFIN_LIM_ITERS if n_iter is None else n_iter, generator=generator, length=length)


def _pghi_method(magnitude, *, n_fft, hop_length, win_length, n_iter, generator, length):
    return _pghi_then_griffin_lim(magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length, n_iter=0,
                                  length=length)


def _pghi_griffin_lim_method(magnitude, *, n_fft, hop_length, win_length, n_iter, generator, length):
    return _pghi_then_griffin_lim(magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                                  n_iter=PGHI_GL_ITERS if n_iter is None else n_iter, length=length)


def _mel_griffin_lim_method(magnitude, *, n_fft, hop_length, win_length, n_iter, generator, length, mel, mel_basis):
    warmup, mel_iters = mel_griffin_lim_iters(n_fft, win_length)
    init = _pghi_then_griffin_lim(magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                                  n_iter=warmup, length=None)
    return mel_griffin_lim(mel, mel_basis, n_fft=n_fft, hop_length=hop_length, win_length=win_length, init=init,
                           n_iter=mel_iters if n_iter is None else n_iter, length=length)


METHODS: dict[str, T.Callable[..., torch.Tensor]] = {
    "griffin-lim": _griffin_lim_method,
    "pghi": _pghi_method,
    "pghi+griffin-lim": _pghi_griffin_lim_method,
}
"""Phase reconstruction methods from a linear magnitude, by name. Register new ones here."""

MEL_METHODS: dict[str, T.Callable[..., torch.Tensor]] = {
    "mel-griffin-lim": _mel_griffin_lim_method,
}
"""Methods that also need the mel spectrogram the magnitude came from, and its filterbank."""

REDUCED_RATE_METHODS = frozenset({"pghi", "pghi+griffin-lim", "mel-griffin-lim"})
"""Methods that may run at a lower sample rate for band-limited input (``reduced_rate=``). Not
``"griffin-lim"``: it stays the original's algorithm, step for step."""

DEFAULT_METHOD = "mel-griffin-lim"
"""What ``"default"`` means when the mel spectrogram is known (every image -> audio path): the best
sound that stays fast."""
LINEAR_DEFAULT_METHOD = "pghi+griffin-lim"
"""What ``"default"`` means for a bare linear magnitude."""

ITERATIVE_METHODS = frozenset({"griffin-lim", "pghi+griffin-lim", "mel-griffin-lim", "default"})
"""Names that take an iteration count (:attr:`PhaseMethod.n_iter`)."""


def method_names() -> list[str]:
    """Every name a :class:`PhaseMethod` (``--phase``) accepts, ``"default"`` last."""
    return [*METHODS, *MEL_METHODS, "default"]


def _unknown(text: str) -> ValueError:
    return ValueError(f"unknown phase method {text!r}; expected one of {', '.join(method_names())}, "
                      "optionally with ':iterations' (e.g. 'mel-griffin-lim:96')")


def _does_not_iterate(name: str, text: str) -> ValueError:
    return ValueError(f"phase method {name!r} does not iterate, so {text!r} cannot set iterations; "
                      f"iterative methods: {', '.join(sorted(ITERATIVE_METHODS))}")


@dataclasses.dataclass(frozen=True)
class PhaseMethod:
    """A phase reconstruction method and, for an iterative one, its iteration count.

    Parameters
    ----------
    name : str
        One of :func:`method_names`: a key of :data:`METHODS` or :data:`MEL_METHODS`, or ``"default"``
        (:data:`DEFAULT_METHOD` when the mel spectrogram is known, else :data:`LINEAR_DEFAULT_METHOD`).
    n_iter : int, optional
        Griffin-Lim iterations of an iterative method (:data:`ITERATIVE_METHODS`); ``None``: the
        method's own (32 for ``"griffin-lim"``, :data:`PGHI_GL_ITERS` after PGHI, for
        ``"mel-griffin-lim"`` the mel-constrained ones of :func:`mel_griffin_lim_iters`).

    Raises
    ------
    ValueError
        For an unknown name, a count that is not a non-negative integer, or a count on a method that does
        not iterate.

    Examples
    --------
    >>> PhaseMethod.parse("mel-griffin-lim:96")
    PhaseMethod(name='mel-griffin-lim', n_iter=96)
    >>> str(PhaseMethod("pghi"))
    'pghi'
    """

    name: str = "default"
    n_iter: T.Optional[int] = None

    def __post_init__(self) -> None:
        if self.name not in method_names():
            raise _unknown(self.name)
        if self.n_iter is None:
            return
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, int) or self.n_iter < 0:
            raise ValueError(f"phase iterations (n_iter) must be a non-negative integer, got {self.n_iter!r}")
        if self.name not in ITERATIVE_METHODS:
            raise _does_not_iterate(self.name, str(self))

    @classmethod
    def parse(cls, text: T.Union[str, PhaseMethod]) -> PhaseMethod:
        """The method named by ``text``, ``"name"`` or ``"name:iterations"``.

        The string form lets every place that names a method as text also choose its iterations, as
        ``"cuda:1"`` picks a device: ``"mel-griffin-lim:96"`` runs 96 mel-constrained iterations (more
        sound quality, more time), ``"griffin-lim:64"`` 64 from random phase. A :class:`PhaseMethod` is
        returned as it is, so a function may take either.

        Raises
        ------
        ValueError
            Naming ``text`` and what is accepted: an unknown name, iterations that are not a non-negative
            integer, or iterations on a method that does not iterate (``"pghi"``).
        """
        if isinstance(text, cls):
            return text
        if not isinstance(text, str):
            raise ValueError(
                f"phase method must be a string like 'mel-griffin-lim' or 'mel-griffin-lim:96', got {text!r}"
            )
        name, sep, count = text.partition(":")
        if name not in method_names():
            raise _unknown(text)
        if not sep:
            return cls(name)
        if not count.isdigit() or not count.isascii():
            raise ValueError(f"phase iterations must be a non-negative integer, got {count!r} in {text!r}")
        if name not in ITERATIVE_METHODS:
            raise _does_not_iterate(name, text)
        return cls(name, int(count))

    def __str__(self) -> str:
        return self.name if self.n_iter is None else f"{self.name}:{self.n_iter}"

    def with_n_iter(self, n_iter: T.Optional[int]) -> PhaseMethod:
        """This method with ``n_iter`` iterations (``None``: unchanged).

        A method that does not iterate (``"pghi"``) has none to set and is returned unchanged, so one
        count can be passed whatever the method.

        Raises
        ------
        ValueError
            When this method already carries a different count, or ``n_iter`` is negative.
        """
        if n_iter is None or self.name not in ITERATIVE_METHODS:
            return self
        if self.n_iter is not None and self.n_iter != n_iter:
            raise ValueError(f"phase method {str(self)!r} sets {self.n_iter} iterations but n_iter={n_iter}")
        return dataclasses.replace(self, n_iter=n_iter)

    def resolve(self, *, mel_known: bool) -> PhaseMethod:
        """``"default"`` made concrete: :data:`DEFAULT_METHOD` when the mel spectrogram is known, else
        :data:`LINEAR_DEFAULT_METHOD`; any other method unchanged."""
        if self.name != "default":
            return self
        return dataclasses.replace(self, name=DEFAULT_METHOD if mel_known else LINEAR_DEFAULT_METHOD)


def reconstruct_waveform(
    magnitude: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    phase: T.Union[PhaseMethod, str] = "default",
    generator: T.Optional[torch.Generator] = None,
    length: T.Optional[int] = None,
    mel: T.Optional[torch.Tensor] = None,
    mel_basis: T.Optional[torch.Tensor] = None,
    reduced_rate: bool = True,
) -> torch.Tensor:
    """Waveform whose STFT magnitude matches ``magnitude``, by the chosen phase reconstruction method.

    Parameters
    ----------
    magnitude : torch.Tensor, shape (..., n_fft // 2 + 1, frames)
        Linear STFT magnitude (not power, not dB), float32, on any device; leading dimensions (clips,
        channels) are processed as one batch.
    n_fft, hop_length, win_length : int, keyword-only
        STFT geometry in samples: a Hann window of ``win_length`` centred in an ``n_fft`` frame, frames
        ``hop_length`` apart, centred STFT with reflect padding.
    phase : PhaseMethod or str
        The method and its iterations; text is parsed by :meth:`PhaseMethod.parse`. A mel method
        (:data:`MEL_METHODS`) needs ``mel`` and ``mel_basis``.
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
        that holds them, with the same frames and bin frequencies
        (:func:`riffusion.stft.reduced_rate_geometry`), and interpolate the waveform back (about twice as
        fast for Riffusion images). ``False``: at the input rate throughout.

    Returns
    -------
    torch.Tensor, shape (..., length), float32, same device and units as ``magnitude``

    Raises
    ------
    ValueError
        For an unknown method or a bad iteration count, a mel method without ``mel``, a magnitude of the
        wrong shape or with NaN/inf, or invalid geometry.
    """
    method = PhaseMethod.parse(phase).resolve(mel_known=mel is not None and mel_basis is not None)
    if method.name in MEL_METHODS and (mel is None or mel_basis is None):
        raise ValueError(
            f"phase method {method.name!r} needs the mel spectrogram and its filterbank (mel=, mel_basis=); "
            "riffusion.spectral.mel_to_waveform passes them"
        )
    magnitude = check_magnitude(magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length)
    if length is not None and length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    extra = {}
    if method.name in MEL_METHODS:
        mel = torch.as_tensor(mel).to(device=magnitude.device, dtype=torch.float32)
        if mel.shape[:-2] != magnitude.shape[:-2] or mel.shape[-1] != magnitude.shape[-1]:
            raise ValueError(
                f"mel {tuple(mel.shape)} must have the leading dimensions and frames of magnitude "
                f"{tuple(magnitude.shape)}"
            )
        # the basis stays where it is: its operators are derived once and cached per device
        extra = {"mel": mel, "mel_basis": torch.as_tensor(mel_basis)}
    fn = METHODS.get(method.name) or MEL_METHODS[method.name]
    geometry = None
    if reduced_rate and method.name in REDUCED_RATE_METHODS:
        bins = occupied_bins(magnitude.amax(-1).reshape(-1, magnitude.shape[-2]).amax(0))
        if extra:
            bins = max(bins, occupied_bins(extra["mel_basis"].detach().abs().sum(0)))
        geometry = reduced_rate_geometry(n_fft, hop_length, win_length, bins)
    if geometry is None:
        return fn(magnitude, n_fft=n_fft, hop_length=hop_length, win_length=win_length, n_iter=method.n_iter,
                  generator=generator, length=length, **extra)
    return _at_reduced_rate(fn, magnitude, geometry, hop_length=hop_length, win_length=win_length,
                            n_iter=method.n_iter, generator=generator, length=length, extra=extra)


def _at_reduced_rate(fn, magnitude, geometry, *, hop_length, win_length, n_iter, generator, length, extra):
    """``fn`` on the same frames and bin frequencies at the lower rate of ``geometry``, then back by
    band-limited interpolation. The STFT of a signal scales with the window's sum, so the result is
    scaled by ``win' / win_length``."""
    n, hop, win = geometry
    if extra:
        extra = {**extra, "mel_basis": extra["mel_basis"][:, : n // 2 + 1]}
    frames = magnitude.shape[-1]
    low = fn(magnitude[..., : n // 2 + 1, :], n_fft=n, hop_length=hop, win_length=win, n_iter=n_iter,
             generator=generator, length=hop * (frames - 1), **extra)
    batch_shape = low.shape[:-1]
    waveform = upsample(low.reshape(-1, low.shape[-1]), hop=hop, hop_length=hop_length, frames=frames)
    waveform = waveform.mul_(win / win_length)
    length = hop_length * (frames - 1) if length is None else int(length)
    if waveform.shape[-1] >= length:
        waveform = waveform[..., :length]
    else:
        waveform = torch.nn.functional.pad(waveform, (0, length - waveform.shape[-1]))
    return waveform.reshape(*batch_shape, length)
