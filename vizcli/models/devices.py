"""Devices and the offline switch, shared by every model source."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vizcli.errors import UsageError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an unavailable device is a usage error."""
    import torch

    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"unknown device {name!r}", hint="use auto, cpu, cuda or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("CUDA was asked for but is not available", hint="use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("MPS was asked for but is not available", hint="use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unsupported device {name!r}", hint="use auto, cpu, cuda or mps")
    return device


def offline_requested(offline: bool | None = None) -> bool:
    """``--offline`` wins; otherwise ``VIZCLI_OFFLINE=1`` (or true/yes) turns it on."""
    if offline:
        return True
    return os.environ.get("VIZCLI_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
