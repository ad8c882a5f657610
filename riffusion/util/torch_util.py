"""The original's ``riffusion.util.torch_util``: device checks and slerp, from the engine's modules."""

from __future__ import annotations

import typing as T

import numpy as np

from riffusion import interpolation
from riffusion.devices import check_device, validate_device

if T.TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["check_device", "slerp", "validate_device"]


def slerp(
    t: float,
    v0: T.Union["torch.Tensor", np.ndarray],
    v1: T.Union["torch.Tensor", np.ndarray],
    dot_threshold: float = 0.9995,
) -> T.Union["torch.Tensor", np.ndarray]:
    """The original's signature (``dot_threshold`` positional) of :func:`riffusion.interpolation.slerp`."""
    return interpolation.slerp(t, v0, v1, dot_threshold=dot_threshold)
