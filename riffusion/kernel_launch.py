"""When the compiled kernels of :mod:`riffusion.phase_kernels` run, and how they are launched.

CPU float32 work (the overlap-add of :class:`riffusion.stft.Stft`, the magnitude steps of the Griffin-Lim
loops) runs in numba kernels that do the same arithmetic as the torch code beside each call, which any
other device runs; the tests compare the two by turning :data:`ENABLED` off. This module imports numba
only when a kernel is launched, so importing the DSP modules stays cheap.
"""

from __future__ import annotations

import torch

ENABLED = True
"""Whether CPU float32 work goes to the compiled kernels (``False``: the torch code everywhere)."""


def runs_compiled(tensor: torch.Tensor) -> bool:
    """Whether work on ``tensor`` goes to the compiled kernels: CPU float32 / complex64, kernels on."""
    return ENABLED and tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.complex64)


def launch(kernel, *args) -> None:
    """Run a parallel kernel on as many threads as torch may use, under its lock, and leave torch's
    thread count as it was.

    numba's OpenMP layer sets the calling thread's OpenMP thread count, which torch reads as its own
    (``torch.set_num_threads(1)`` would become 2); the lock (:data:`riffusion.phase_kernels.PARALLEL_LOCK`)
    keeps two threads from launching at once, which numba's fallback thread pool does not survive.
    """
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
