"""Checkpoint files: read a state dict safely (no code runs) and load it strictly.

``torch.save`` files load with ``weights_only=True``; ``.safetensors`` files through the
safetensors library. Wrapped state dicts (``{"state_dict": ...}``, Lightning, EMA) and
wrapper prefixes (``module.``, ``_orig_mod.``) are unwrapped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli.errors import WeightsError, WeightsUsageError, first_line

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vizcli.models.loaded import WeightsInfo

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar", ".pkl", ".safetensors")
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "ema", "params")
WEIGHT_KEYWORDS = ("none", "auto", "default")


def max_checkpoint_bytes() -> float:
    """Files above ``VIZCLI_MAX_CHECKPOINT_GB`` (default 20) are refused before reading."""
    text = os.environ.get("VIZCLI_MAX_CHECKPOINT_GB", "").strip()
    try:
        return float(text) * 1e9 if text else 20e9
    except ValueError:
        return 20e9


def is_checkpoint_request(weights: str) -> bool:
    """Whether a ``--weights`` value names a file rather than a keyword or weights name."""
    if weights.lower() in WEIGHT_KEYWORDS:
        return False
    return (
        "/" in weights
        or os.sep in weights
        or weights.lower().endswith(CHECKPOINT_SUFFIXES)
        or Path(weights).exists()
    )


def _is_safetensors(path: Path, head: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON header."""
    if path.suffix.lower() == ".safetensors":
        return True
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 28


def read_state_dict(path_text: str) -> dict[str, torch.Tensor]:
    """Load a state dict from a file, refusing pickles that would run code."""
    if "://" in path_text:
        raise WeightsUsageError(
            f"--weights takes a local file, not a URL: {path_text}",
            hint="download it first (curl -LO URL), then pass the file",
        )
    path = Path(path_text).expanduser()
    if not path.exists():
        raise WeightsUsageError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise WeightsUsageError(f"checkpoint path is a folder, not a file: {path}")
    if not path.is_file():
        raise WeightsUsageError(f"checkpoint {path} is not a regular file (a device or pipe)")
    if path.stat().st_size > max_checkpoint_bytes():
        raise WeightsError(
            f"checkpoint {path} is {path.stat().st_size / 1e9:.1f} GB, over the "
            f"{max_checkpoint_bytes() / 1e9:.0f} GB limit",
            hint="raise VIZCLI_MAX_CHECKPOINT_GB if you mean it",
        )
    if path.stat().st_size == 0:
        raise WeightsError(f"checkpoint file is empty: {path}")
    with path.open("rb") as handle:
        head = handle.read(16)
    if _is_safetensors(path, head):
        return _read_safetensors(path)
    if head[:4] != b"PK\x03\x04" and head[:1] != b"\x80":  # torch.save zip, or a legacy pickle
        raise WeightsError(
            f"{path} is not a PyTorch checkpoint (unrecognised file format)",
            hint="vizcli reads torch.save files and .safetensors",
        )
    if head[:4] == b"PK\x03\x04":
        _check_inflation(path)
    return _extract_state_dict(_torch_load(path), path)


def _check_inflation(path: Path) -> None:
    """Refuse a zip whose members would inflate far beyond the file (a zip bomb)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"{path} is not a PyTorch checkpoint: {first_line(exc)}") from exc
    inflated = sum(m.file_size for m in members)
    size = path.stat().st_size
    compressed = any(m.compress_type != zipfile.ZIP_STORED for m in members)
    if inflated > max_checkpoint_bytes() or (compressed and inflated > 16 * size + (64 << 20)):
        raise WeightsError(
            f"{path} ({size / 1e6:.1f} MB) would inflate to {inflated / 1e9:.1f} GB in memory; "
            "refused",
            hint="torch.save writes tensors uncompressed; raise VIZCLI_MAX_CHECKPOINT_GB if real",
        )


def _torch_load(path: Path) -> Any:
    import pickle

    import torch

    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it then refuses
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise WeightsError(
                f"{path} holds Python objects beyond tensors; refused to unpickle them "
                "(weights_only=True loading runs no code)",
                hint="re-save it with torch.save(model.state_dict(), path)",
            ) from exc
        raise WeightsError(f"{path} is not a PyTorch checkpoint: {first_line(exc)}") from exc
    except Exception as exc:  # zip errors, EOF, invalid load key...
        raise WeightsError(f"{path} is not a PyTorch checkpoint: {first_line(exc)}") from exc


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:  # pragma: no cover - safetensors is a dependency
        raise WeightsError(f"{path} is a safetensors file", hint="pip install safetensors") from exc
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # header errors, truncated files
        raise WeightsError(f"{path} is not a valid safetensors file: {first_line(exc)}") from exc
    if not state:
        raise WeightsError(f"{path} holds no tensors")
    return state


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    import torch

    def is_state_dict(value: Any) -> bool:
        return (
            isinstance(value, Mapping)
            and len(value) > 0
            and all(isinstance(v, torch.Tensor) for v in value.values())
        )

    def checked(state: Mapping[Any, Any]) -> dict[str, torch.Tensor]:
        odd = [k for k in state if not isinstance(k, str)]
        if odd:
            raise WeightsError(
                f"{path} maps {type(odd[0]).__name__} keys such as {odd[0]!r} to tensors, "
                "not parameter names",
                hint="save model.state_dict(), whose keys are names like 'conv1.weight'",
            )
        return dict(state)

    if is_state_dict(obj):
        return checked(obj)
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if is_state_dict(obj.get(key)):
                return checked(obj[key])
        keys = ", ".join(map(str, list(obj)[:5]))
        raise WeightsError(f"{path} holds a dict but no state dict (top-level keys: {keys})")
    raise WeightsError(f"{path} holds a {type(obj).__name__}, not a state dict")


def load_checkpoint_into(model: nn.Module, path_text: str) -> WeightsInfo:
    """Load a checkpoint file into ``model`` strictly; mismatches name a few keys."""
    from vizcli.models.loaded import WeightsInfo

    state = _strip_prefixes(read_state_dict(path_text), model)
    expected = model.state_dict()
    # torch's own loader fills in BatchNorm's num_batches_tracked for old checkpoints
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {list(state[k].shape)} vs model {list(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches (e.g. {'; '.join(mismatched[:2])})")
    if problems:
        raise WeightsError(
            f"checkpoint {path_text} does not fit {type(model).__name__}: " + ", ".join(problems),
            hint="was it saved from another architecture?",
        )
    model.load_state_dict(state, strict=True)
    return WeightsInfo(path_text, "checkpoint", path=str(Path(path_text).expanduser()))


def _strip_prefixes(state: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """Drop wrapper prefixes such as DataParallel's ``module.`` when the model lacks them."""
    model_keys = set(model.state_dict())
    for prefix in ("module.", "model.", "_orig_mod."):
        if (
            state
            and all(k.startswith(prefix) for k in state)
            and not any(k.startswith(prefix) for k in model_keys)
        ):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state
