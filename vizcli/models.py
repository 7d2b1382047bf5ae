"""Resolve a model spec and a ``--weights`` value into a ready model.

A model spec is a torchvision model name (``resnet18``) or a user factory
(``package.module:factory`` or ``path/to/file.py:factory``). Weights are ``none``,
``auto``, ``DEFAULT``, a weights enum name (``IMAGENET1K_V2``) or a checkpoint path.
Every result carries a :class:`WeightsInfo` saying what was actually loaded.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from vizcli.errors import (
    ModelNotFoundError,
    ModelRunError,
    UsageError,
    WeightsError,
    WeightsUsageError,
    first_line,
    suggest,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vizcli.images import Preprocess

TASKS = ("classification", "detection", "segmentation", "video", "optical_flow", "quantized")
_TASK_MODULES = {
    "classification": "torchvision.models",
    "detection": "torchvision.models.detection",
    "segmentation": "torchvision.models.segmentation",
    "video": "torchvision.models.video",
    "optical_flow": "torchvision.models.optical_flow",
    "quantized": "torchvision.models.quantization",
}
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar", ".pkl")
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "ema", "params")
WEIGHT_KEYWORDS = ("none", "auto", "default")


@dataclass(frozen=True)
class WeightsInfo:
    """What weights a model really carries, for the terminal, JSON and artifacts."""

    requested: str
    kind: str  # "random", "torchvision" or "checkpoint"
    name: str | None = None  # e.g. "ResNet18_Weights.IMAGENET1K_V1"
    path: str | None = None  # file the tensors came from
    warning: str | None = None  # set when the request could not be honoured as asked

    @property
    def pretrained(self) -> bool:
        return self.kind != "random"

    def describe(self) -> str:
        if self.kind == "torchvision":
            return f"{self.name} (from {self.path})"
        if self.kind == "checkpoint":
            return f"checkpoint {self.path}"
        return "none (random init)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pretrained": self.pretrained}


@dataclass
class ModelEntry:
    """One row of ``vizcli models``."""

    name: str
    task: str
    weights: list[str]
    default_weights: str | None


@dataclass
class LoadedModel:
    """A model ready to run, with everything the commands report about it."""

    model: nn.Module
    spec: str
    name: str
    source: str  # "torchvision" or "factory"
    task: str | None
    weights: WeightsInfo
    device: torch.device
    preprocess: Preprocess
    categories: list[str] | None = None

    def describe(self) -> dict[str, Any]:
        """The model as JSON output and manifests report it."""
        return {
            "spec": self.spec,
            "name": self.name,
            "source": self.source,
            "task": self.task,
            "class": type(self.model).__name__,
        }

    @property
    def default_input_shapes(self) -> list[tuple[int, ...]]:
        """Input shapes the model expects by default (one per forward argument)."""
        shape = self.preprocess.input_shape()
        if self.task == "video":
            shape = (shape[0], shape[1], 16, *shape[2:])
        return [shape, shape] if self.task == "optical_flow" else [shape]


# --------------------------------------------------------------------- registry


@functools.cache
def model_tasks() -> dict[str, str]:
    """Map every torchvision model name to its task."""
    from torchvision.models import list_models

    tasks: dict[str, str] = {}
    for task, module_name in _TASK_MODULES.items():
        module = importlib.import_module(module_name)
        for name in list_models(module=module):
            tasks.setdefault(name, task)
    return tasks


def list_model_entries(pattern: str | None = None, task: str | None = None) -> list[ModelEntry]:
    """List torchvision models, optionally filtered by a glob/substring and a task."""
    from torchvision.models import get_model_weights

    if task is not None and task not in TASKS:
        raise UsageError(f"unknown task {task!r}", hint="choose from " + ", ".join(TASKS))
    entries = []
    for name, name_task in sorted(model_tasks().items()):
        if task and name_task != task:
            continue
        if pattern and not _matches(name, pattern):
            continue
        enum = get_model_weights(name)
        members = [m.name for m in enum]
        default = enum.DEFAULT.name if members else None
        entries.append(ModelEntry(name, name_task, members, default))
    return entries


def _matches(name: str, pattern: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatch(name, pattern)
    return pattern.lower() in name.lower()


# --------------------------------------------------------------------- devices


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


# --------------------------------------------------------------------- resolution


def resolve_model(
    spec: str,
    weights: str = "none",
    device: str = "auto",
    offline: bool | None = None,
    meta: bool = False,
) -> LoadedModel:
    """Build the model named by ``spec`` with the requested weights, in eval mode.

    ``meta=True`` builds on the meta device (no memory for parameters) when no
    weights are loaded; shapes, parameter counts and FLOPs stay exact.
    """
    offline = offline_requested(offline)
    weights = weights.strip()
    if ":" in spec and not _looks_like_drive(spec):
        loaded = _resolve_factory(spec, weights, device, meta)
    else:
        loaded = _resolve_torchvision(spec, weights, device, offline, meta)
    loaded.model.eval()
    _resume_gc()
    return loaded


def _resume_gc() -> None:
    """Re-enable a GC the CLI paused for start-up, freezing the imported objects first."""
    import gc

    if not gc.isenabled():
        gc.freeze()  # imported modules live forever: keep them out of every later scan
        gc.enable()


def _looks_like_drive(spec: str) -> bool:
    return len(spec) > 2 and spec[1] == ":" and spec[2] in "\\/"


def _resolve_torchvision(
    name: str, weights: str, device_name: str, offline: bool, meta: bool
) -> LoadedModel:
    import torch
    from torchvision.models import get_model, get_model_weights

    from vizcli.images import IMAGENET_PREPROCESS, preprocess_from_weights

    tasks = model_tasks()
    if name not in tasks:
        hint = suggest(name, tasks)
        hint = hint or "see 'vizcli models', or give a factory as module:function"
        raise ModelNotFoundError(f"unknown model {name!r}", hint=hint)
    enum = get_model_weights(name)
    default = enum.DEFAULT if len(enum) else None
    preprocess = preprocess_from_weights(default) if default else IMAGENET_PREPROCESS
    categories = list(default.meta.get("categories") or []) or None if default else None
    device = resolve_device(device_name)

    member, path, warning = _choose_torchvision_weights(name, enum, weights, offline)
    if member is not None:
        model = _build_pretrained(name, member, path)
        info = WeightsInfo(weights, "torchvision", name=str(member), path=str(path))
        categories = list(member.meta.get("categories") or []) or None
        preprocess = preprocess_from_weights(member)
    elif _is_checkpoint_request(weights):
        model = _build(get_model, name, torch.device("cpu"))
        info = load_checkpoint_into(model, weights)
    else:
        build_device = torch.device("meta") if meta else torch.device("cpu")
        model = _build(get_model, name, build_device)
        info = WeightsInfo(weights, "random", warning=warning)
        # Without weights a builder keeps its own input size (vit_h_14: 224, not SWAG's 518).
        size = getattr(model, "image_size", None)
        if isinstance(size, int) and (size, size) != preprocess.crop:
            preprocess = preprocess.with_size(size)
    if not _on_meta(model):
        model = model.to(device)
    return LoadedModel(
        model, name, name, "torchvision", tasks[name], info, device, preprocess, categories
    )


def _build(get_model: Any, name: str, device: torch.device) -> nn.Module:
    """Build with random weights everywhere (no pretrained backbone download either)."""
    import inspect

    import torch
    from torchvision.models import get_model_builder

    kwargs: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(get_model_builder(name)).parameters:
        kwargs["weights_backbone"] = None
    try:
        with torch.device(device), _quiet_builder_warnings():
            return get_model(name, **kwargs)
    except Exception as exc:  # a model that cannot be built on meta is built for real
        if device.type != "meta":
            raise ModelRunError(f"building {name} failed: {first_line(exc)}") from exc
        with torch.device("cpu"), _quiet_builder_warnings():
            return get_model(name, **kwargs)


@contextlib.contextmanager
def _quiet_builder_warnings() -> Iterator[None]:
    """Hide torchvision's FutureWarning about inception/googlenet init: noise for users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _choose_torchvision_weights(
    name: str, enum: Any, weights: str, offline: bool
) -> tuple[Any, Path | None, str | None]:
    """Return (enum member or None, cached file, warning) for a --weights value."""
    lowered = weights.lower()
    if lowered == "none" or _is_checkpoint_request(weights):
        return None, None, None
    members = list(enum)
    if lowered == "auto":
        if not members:
            return None, None, f"{name} has no pretrained torchvision weights; using random init"
        member = enum.DEFAULT
        path = cached_weights_path(member)
        if path.is_file():
            return member, path, None
        if offline:
            return (
                None,
                None,
                (
                    f"{member} is not in the torch hub cache ({path}) and --offline is set; "
                    "using random init"
                ),
            )
        try:
            _download(member, path)
        except WeightsError as exc:
            return None, None, f"{exc}; using random init"
        return member, path, None
    member = _find_member(name, enum, weights)
    path = cached_weights_path(member)
    if not path.is_file():
        if offline:
            raise WeightsError(
                f"{member} is not in the torch hub cache ({path}) and --offline is set",
                hint="copy the file there, or run once without --offline",
            )
        _download(member, path)
    return member, path, None


def _find_member(name: str, enum: Any, weights: str) -> Any:
    members = {m.name: m for m in enum}
    if not members:
        raise WeightsUsageError(
            f"{name} has no pretrained torchvision weights",
            hint="use --weights none or a checkpoint path",
        )
    wanted = weights.split(".")[-1] if weights.startswith(enum.__name__ + ".") else weights
    if wanted.upper() == "DEFAULT":
        return enum.DEFAULT
    for key, member in members.items():
        if key.lower() == wanted.lower():
            return member
    hint = suggest(wanted, members) or "choose from " + ", ".join(["DEFAULT", *members])
    raise WeightsUsageError(f"unknown weights {weights!r} for {name}", hint=hint)


def cached_weights_path(member: Any) -> Path:
    """Where torch hub keeps (or would keep) the file of a torchvision weights enum member."""
    import torch.hub

    filename = os.path.basename(urlparse(member.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _download(member: Any, path: Path) -> None:
    import torch.hub

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(member.url, str(path), progress=sys.stderr.isatty())
    except Exception as exc:  # URLError, HTTPError, hash mismatch, disk full...
        raise WeightsError(f"could not download {member}: {first_line(exc)}") from exc


@contextlib.contextmanager
def _weights_only_loading(member: Any) -> Iterator[None]:
    """Make torchvision load hub files with ``weights_only=True`` (it passes False)."""
    import torch.hub

    enum_class = type(member)
    original = enum_class.get_state_dict

    def safe_get_state_dict(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return torch.hub.load_state_dict_from_url(self.url, *args, **kwargs)

    enum_class.get_state_dict = safe_get_state_dict
    try:
        yield
    finally:
        enum_class.get_state_dict = original


def _build_pretrained(name: str, member: Any, path: Path | None) -> nn.Module:
    from torchvision.models import get_model

    try:
        with _weights_only_loading(member), _quiet_builder_warnings(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle-protocol notes before a refusal
            return get_model(name, weights=member, progress=False)
    except Exception as exc:
        raise WeightsError(
            f"loading {member} from {path} failed: {first_line(exc)}",
            hint="delete the cached file so it is fetched again",
        ) from exc


# --------------------------------------------------------------------- checkpoints


def _is_checkpoint_request(weights: str) -> bool:
    if weights.lower() in WEIGHT_KEYWORDS:
        return False
    return (
        "/" in weights
        or os.sep in weights
        or weights.lower().endswith(CHECKPOINT_SUFFIXES)
        or Path(weights).exists()
    )


def read_state_dict(path_text: str) -> dict[str, torch.Tensor]:
    """Load a state dict from a file, refusing pickles that would run code."""
    import pickle

    import torch

    path = Path(path_text).expanduser()
    if not path.exists():
        raise WeightsUsageError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise WeightsUsageError(f"checkpoint path is a folder, not a file: {path}")
    if path.stat().st_size == 0:
        raise WeightsError(f"checkpoint file is empty: {path}")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04" and magic[:1] != b"\x80":  # torch.save zip, or a legacy pickle
        raise WeightsError(f"{path} is not a PyTorch checkpoint (unrecognised file format)")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it then refuses
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
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
    return _extract_state_dict(obj, path)


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    import torch

    def is_state_dict(value: Any) -> bool:
        return (
            isinstance(value, Mapping)
            and len(value) > 0
            and all(isinstance(v, torch.Tensor) for v in value.values())
        )

    if is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if is_state_dict(obj.get(key)):
                return dict(obj[key])
        keys = ", ".join(map(str, list(obj)[:5]))
        raise WeightsError(f"{path} holds a dict but no state dict (top-level keys: {keys})")
    raise WeightsError(f"{path} holds a {type(obj).__name__}, not a state dict")


def load_checkpoint_into(model: nn.Module, path_text: str) -> WeightsInfo:
    """Load a checkpoint file into ``model`` strictly; mismatches name a few keys."""
    state = _strip_prefixes(read_state_dict(path_text), model)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
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


# --------------------------------------------------------------------- factories


def _resolve_factory(spec: str, weights: str, device_name: str, meta: bool) -> LoadedModel:
    import torch
    from torch import nn

    from vizcli.images import IMAGENET_PREPROCESS

    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ModelNotFoundError(
            f"bad model spec {spec!r}", hint="use module:factory or path/to/file.py:factory"
        )
    module = _import_target(target)
    factory: Any = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            raise ModelNotFoundError(
                f"{target} has no attribute {attr!r}", hint=suggest(part, names)
            )
        factory = getattr(factory, part)
    if not callable(factory):
        raise UsageError(f"{spec} is not callable; it must return an nn.Module")

    device = resolve_device(device_name)
    lowered = weights.lower()
    use_meta = meta and lowered in ("none", "auto")
    model = _call_factory(factory, spec, torch.device("meta") if use_meta else None)
    if not isinstance(model, nn.Module):
        raise UsageError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")

    if _is_checkpoint_request(weights):
        info = load_checkpoint_into(model, weights)
    elif lowered in ("none", "auto"):
        warning = "factory models have no torchvision weights; using random init"
        info = WeightsInfo(weights, "random", warning=warning if lowered == "auto" else None)
    else:
        raise WeightsUsageError(
            f"--weights {weights!r} names torchvision weights, but {spec} is a factory model",
            hint="use none or a checkpoint path",
        )
    if not _on_meta(model):
        model = model.to(device)
    return LoadedModel(model, spec, attr, "factory", None, info, device, IMAGENET_PREPROCESS, None)


def _import_target(target: str) -> Any:
    is_path = target.endswith(".py") or "/" in target or os.sep in target
    try:
        if is_path:
            return _import_file(Path(target))
        if os.getcwd() not in sys.path:  # like `python -m`, let local modules import
            sys.path.insert(0, os.getcwd())
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
            raise ModelNotFoundError(
                f"cannot import module {target!r}", hint="check the name and PYTHONPATH"
            ) from exc
        raise ModelRunError(f"importing {target} failed: {first_line(exc)}") from exc
    except (ModelNotFoundError, UsageError):
        raise
    except Exception as exc:
        raise ModelRunError(f"importing {target} failed: {first_line(exc)}") from exc


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ModelNotFoundError(f"model file not found: {path}")
    module_name = f"_vizcli_user_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelNotFoundError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.parent.resolve()))  # siblings of the file import too
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    return module


def _call_factory(factory: Any, spec: str, device: torch.device | None) -> Any:
    import torch

    try:
        if device is None:
            return factory()
        try:
            with torch.device(device):
                return factory()
        except Exception:  # some factories touch data; build those for real
            return factory()
    except Exception as exc:
        raise ModelRunError(f"{spec}() failed: {first_line(exc)}") from exc


# --------------------------------------------------------------------- helpers


def _on_meta(model: nn.Module) -> bool:
    return any(p.is_meta for p in model.parameters())
