"""Torch device names: which kinds this package knows and which are usable on this machine."""

from __future__ import annotations

import warnings

DEVICE_KINDS = ("cpu", "cuda", "mps")


def validate_device(device: str) -> None:
    """Raise ``ValueError`` unless ``device`` names a kind of device this package knows (usable here or not).

    Accepted: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    """
    name = str(device)
    if name != "auto" and name.split(":")[0] not in DEVICE_KINDS:
        raise ValueError(f"unknown device {name!r}; expected 'auto', 'cpu', 'cuda[:N]' or 'mps'")


def _mps_available() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def check_device(device: str, backup: str = "cpu") -> str:
    """``device`` if it is usable here, else ``backup`` with a warning; ``"auto"`` picks CUDA, MPS, CPU.

    Raises
    ------
    ValueError
        If ``device`` is not a known kind (see :func:`validate_device`).
    """
    import torch

    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available():
            return "mps"
        return "cpu"
    validate_device(name)
    kind = name.split(":")[0]
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if not available[kind]:
        warnings.warn(f"device {name!r} is not available here; using {backup!r}", stacklevel=2)
        return backup
    return name
