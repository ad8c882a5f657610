"""Device checks and spherical interpolation (the original's ``riffusion.util.torch_util``)."""

from __future__ import annotations

import typing as T
import warnings

import numpy as np
import torch


def validate_device(device: str) -> None:
    """Raise ``ValueError`` unless ``device`` names a kind of device this package knows (usable here or not)."""
    name = str(device)
    if name != "auto" and name.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; expected 'auto', 'cpu', 'cuda[:N]' or 'mps'")


def check_device(device: str, backup: str = "cpu") -> str:
    """Return ``device`` if it is usable here, else ``backup`` with a warning.

    ``"auto"`` picks CUDA, then MPS, then CPU.
    """
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    validate_device(name)
    kind = name.split(":")[0]
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    }
    if not available[kind]:
        warnings.warn(f"device {name!r} is not available here; using {backup!r}", stacklevel=2)
        return backup
    return name


def slerp(
    t: float,
    v0: T.Union[torch.Tensor, np.ndarray],
    v1: T.Union[torch.Tensor, np.ndarray],
    dot_threshold: float = 0.9995,
) -> T.Union[torch.Tensor, np.ndarray]:
    """Spherical linear interpolation between two tensors treated as single vectors.

    Falls back to linear interpolation when they are nearly parallel (``|cos| > dot_threshold``), where
    the spherical formula is numerically unstable. Works on torch tensors (any device; computed in
    float64 and returned in ``v0``'s dtype and device) and on numpy arrays.

    Shoemake, "Animating rotation with quaternion curves", SIGGRAPH 1985.
    """
    is_torch = isinstance(v0, torch.Tensor)
    if is_torch:
        dtype, device = v0.dtype, v0.device
        a = v0.detach().to("cpu", torch.float64).numpy()
        b = torch.as_tensor(v1).detach().to("cpu", torch.float64).numpy()
    else:
        a = np.asarray(v0, dtype=np.float64)
        b = np.asarray(v1, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"slerp needs equal shapes, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    dot = float(np.sum(a * b) / norms) if norms > 0 else 1.0
    if abs(dot) > dot_threshold:
        out = (1 - t) * a + t * b
    else:
        theta = np.arccos(dot)
        sin_theta = np.sin(theta)
        out = np.sin((1 - t) * theta) / sin_theta * a + np.sin(t * theta) / sin_theta * b
    if is_torch:
        return torch.from_numpy(out).to(device=device, dtype=dtype)
    return out.astype(np.asarray(v0).dtype if np.asarray(v0).dtype.kind == "f" else np.float64)
