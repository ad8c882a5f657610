"""Running the small model's guided steps fast on a CPU: two threads for the two halves of a
classifier-free-guided step, thread limits, and bfloat16 where the CPU has it natively."""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import threading
import typing as T

import torch

from riffusion.small.denoiser import denoise


class _Denoiser(torch.nn.Module):
    """:func:`~riffusion.small.denoiser.denoise` as a module of (x, t, cond[, rhythm]), for tracing."""

    def __init__(self, unet, patch_size: int):
        super().__init__()
        self.unet = unet
        self.patch_size = patch_size

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                rhythm: T.Optional[torch.Tensor] = None) -> torch.Tensor:
        return denoise(self.unet, x, t, cond, patch_size=self.patch_size, rhythm=rhythm)


@functools.lru_cache(maxsize=1)
def branch_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The process's two worker threads for :class:`ParallelGuidance` (shared by all pipelines; threads
    start on first use)."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="riffusion-cfg")


class ParallelGuidance:
    """Both halves of a classifier-free-guided UNet call at the same time, on two CPU threads.

    Each half runs a TorchScript trace of the UNet (made on first use for each input shape and kept, at
    most ``max_shapes`` of them): a traced call runs in C++ with the GIL released, so two of them use two
    cores, where two threads of eager diffusers code mostly wait for each other. The trace shares the
    UNet's parameters; it is exact for the shape it was made with (checked against eager calls in the tests).

    Parameters
    ----------
    unet : UNet2DConditionModel
        In eval mode, float32, on the CPU.
    patch_size : int
        As :func:`denoise`.
    """

    def __init__(self, unet, *, patch_size: int, max_shapes: int = 6):
        self._module = _Denoiser(unet, patch_size).eval()
        self._max_shapes = max_shapes
        self._traces: "collections.OrderedDict[tuple, T.Any]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self._failed = False

    def _trace(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, rhythm: T.Optional[torch.Tensor]):
        """The trace for these input shapes, or None where tracing is not possible (then eager)."""
        key = (tuple(x.shape), tuple(cond.shape), x.dtype, cond.dtype, None if rhythm is None else tuple(rhythm.shape))
        with self._lock:
            if self._failed:
                return None
            if key in self._traces:
                self._traces.move_to_end(key)
                return self._traces[key]
            try:
                traced = self._make_trace(x, t, cond, rhythm)
            except Exception as error:  # noqa: BLE001 - any tracing failure means: stay eager
                import logging

                logging.getLogger(__name__).warning("cannot trace the UNet (%s); guided steps run as one eager batch",
                                                    error)
                self._failed = True
                return None
            self._traces[key] = traced
            if len(self._traces) > self._max_shapes:
                self._traces.popitem(last=False)
            return traced

    def _make_trace(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, rhythm: T.Optional[torch.Tensor]):
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            # shape-dependent branches are fixed in the trace: exact, as each shape has its own; torch 2.13
            # marks torch.jit deprecated (torch.export's modules run in Python and hold the GIL, which is what
            # this avoids)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            inputs = (x, t, cond) if rhythm is None else (x, t, cond, rhythm)
            return torch.jit.trace(self._module, inputs, check_trace=False)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, uncond: torch.Tensor, cond: torch.Tensor,
                 rhythm: T.Optional[torch.Tensor] = None, uncond_rhythm: T.Optional[torch.Tensor] = None):
        """(unconditional, conditional) predictions for ``x`` (batch, 1, height, width) at timestep ``t``
        (scalar or (batch,)), with ``uncond`` and ``cond`` (batch, tokens, 384), and for a rhythm model the
        conditional half's ``rhythm`` (batch, rows, width) and the unconditional half's ``uncond_rhythm``
        (``rhythm`` when None)."""
        t = t.reshape(-1).expand(x.shape[0]).contiguous()
        if uncond_rhythm is None:
            uncond_rhythm = rhythm
        traced = self._trace(x, t, cond, rhythm)
        if traced is None:
            with torch.no_grad():
                both = None if rhythm is None else torch.cat([uncond_rhythm, rhythm])
                return self._module(torch.cat([x, x]), torch.cat([t, t]), torch.cat([uncond, cond]), both).chunk(2)

        def run(c, r):
            with torch.no_grad():
                return traced(x, t, c) if r is None else traced(x, t, c, r)

        first = branch_pool().submit(run, uncond, uncond_rhythm)
        second = run(cond, rhythm)  # this thread does the other half
        return first.result(), second


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX). oneDNN also reports bf16 support
    on plain AVX-512 CPUs, where it is emulated and slower than float32 for this model."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(bool(check()) for check in checks if check is not None)
    except RuntimeError:
        return False
