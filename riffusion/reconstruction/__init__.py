"""Phase reconstruction: a waveform from an STFT magnitude (or a mel spectrogram).

A Riffusion image stores only magnitudes; to hear it every time-frequency point needs a phase. The
methods, their names and the typed choice of one (:class:`PhaseMethod`) are in
:mod:`~riffusion.reconstruction.methods`; the algorithms in their own modules:

- :mod:`~riffusion.reconstruction.fast_griffin_lim`: fast Griffin-Lim (:func:`griffin_lim`);
- :mod:`~riffusion.reconstruction.phase_gradient`: phase-gradient heap integration (:func:`pghi`);
- :mod:`~riffusion.reconstruction.mel_constrained`: Griffin-Lim against the mel spectrogram
  (:func:`mel_griffin_lim`).

They share the STFT engine and geometry of :mod:`riffusion.stft`; on the CPU their element-wise steps
run in the compiled kernels of :mod:`riffusion.phase_kernels`.
"""

from riffusion.reconstruction.fast_griffin_lim import GRIFFIN_LIM_ITERS, griffin_lim
from riffusion.reconstruction.mel_constrained import MEL_GL_ITERS, mel_griffin_lim
from riffusion.reconstruction.methods import (
    DEFAULT_METHOD,
    ITERATIVE_METHODS,
    LINEAR_DEFAULT_METHOD,
    MEL_GL_ITERS_UNPADDED,
    MEL_GL_WARMUP_ITERS,
    MEL_GL_WARMUP_ITERS_UNPADDED,
    MEL_METHODS,
    METHODS,
    PGHI_GL_ITERS,
    REDUCED_RATE_METHODS,
    PhaseMethod,
    mel_griffin_lim_iters,
    method_names,
    reconstruct_waveform,
)
from riffusion.reconstruction.phase_gradient import pghi

__all__ = [
    "PhaseMethod",
    "reconstruct_waveform",
    "griffin_lim",
    "pghi",
    "mel_griffin_lim",
    "method_names",
    "mel_griffin_lim_iters",
    "METHODS",
    "MEL_METHODS",
    "REDUCED_RATE_METHODS",
    "ITERATIVE_METHODS",
    "DEFAULT_METHOD",
    "LINEAR_DEFAULT_METHOD",
    "GRIFFIN_LIM_ITERS",
    "PGHI_GL_ITERS",
    "MEL_GL_ITERS",
    "MEL_GL_WARMUP_ITERS",
    "MEL_GL_ITERS_UNPADDED",
    "MEL_GL_WARMUP_ITERS_UNPADDED",
]
