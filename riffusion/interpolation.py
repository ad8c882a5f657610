"""Spherical linear interpolation (slerp) of tensors and arrays treated as single vectors."""

from __future__ import annotations

import typing as T

import numpy as np

if T.TYPE_CHECKING:  # pragma: no cover
    import torch

ArrayLike = T.Union["torch.Tensor", np.ndarray]


def slerp(t: float, v0: ArrayLike, v1: ArrayLike, *, dot_threshold: float = 0.9995) -> ArrayLike:
    """Interpolate from ``v0`` (``t = 0``) to ``v1`` (``t = 1``) along the great circle between them.

    Gaussian noises keep their norm along the way, where a straight line would shrink it midway. Nearly
    parallel inputs (``|cos| > dot_threshold``), where the spherical formula divides by almost zero, are
    interpolated linearly. Computed in float64.

    Parameters
    ----------
    t : float
        Position, 0 to 1.
    v0, v1 : torch.Tensor or np.ndarray, same shape
        End points, any shape (flattened for the angle).
    dot_threshold : float, keyword-only
        Cosine above which the linear formula is used.

    Returns
    -------
    torch.Tensor or np.ndarray, the shape of ``v0``
        A tensor on ``v0``'s device with its dtype when ``v0`` is a tensor; else an array of ``v0``'s
        floating dtype (float64 for integer input).

    Raises
    ------
    ValueError
        If the shapes differ.

    References
    ----------
    Shoemake, "Animating rotation with quaternion curves", SIGGRAPH 1985.
    """
    is_torch = type(v0).__module__.startswith("torch")
    if is_torch:
        import torch

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
    dtype = np.asarray(v0).dtype
    return out.astype(dtype if dtype.kind == "f" else np.float64)
