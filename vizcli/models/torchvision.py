"""torchvision models by name, with weights from the torch hub cache (or downloaded).

The builder arguments are torchvision's; hub files load with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import os
import warnings
from collections.abc import Iterator
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
from vizcli.models.checkpoints import is_checkpoint_request, load_checkpoint_into
from vizcli.models.devices import resolve_device
from vizcli.models.loaded import (
    LoadedModel,
    ModelEntry,
    WeightsInfo,
    matches,
    on_meta,
    quiet_builder_warnings,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

TASKS = ("classification", "detection", "segmentation", "video", "optical_flow", "quantized")
_TASK_MODULES = {
    "classification": "torchvision.models",
    "detection": "torchvision.models.detection",
    "segmentation": "torchvision.models.segmentation",
    "video": "torchvision.models.video",
    "optical_flow": "torchvision.models.optical_flow",
    "quantized": "torchvision.models.quantization",
}


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
        if pattern and not matches(name, pattern):
            continue
        enum = get_model_weights(name)
        members = [m.name for m in enum]
        default = enum.DEFAULT.name if members else None
        entries.append(ModelEntry(name, name_task, members, default))
    return entries


def resolve(name: str, weights: str, device_name: str, offline: bool, meta: bool) -> LoadedModel:
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
    elif is_checkpoint_request(weights):
        model, info = _load_checkpoint(get_model, name, weights, default, tasks[name])
    else:
        build_device = torch.device("meta") if meta else torch.device("cpu")
        published = default if tasks[name] != "quantized" else None
        model = _build(get_model, name, build_device, published)
        info = WeightsInfo(weights, "random", warning=warning)
        size = getattr(model, "image_size", None)
        if isinstance(size, int) and (size, size) != preprocess.crop:
            preprocess = preprocess.with_size(size)
    if not on_meta(model):
        model = model.to(device)
    return LoadedModel(
        model, name, name, "torchvision", tasks[name], info, device, preprocess, categories
    )


def _build(get_model: Any, name: str, device: torch.device, published: Any = None) -> nn.Module:
    """Build with random weights everywhere (no pretrained backbone download either).

    With ``published`` (the default weights), the builder applies every argument those
    weights imply (class count, googlenet's dropped aux heads, detection's frozen BatchNorm,
    vit_h_14's 518 px) but loads nothing: ``--weights none`` shows the published
    architecture, exactly what ``--weights DEFAULT`` would load into.
    """
    from torchvision.models import get_model_builder

    kwargs: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(get_model_builder(name)).parameters:
        kwargs["weights_backbone"] = None
    if published is not None:
        try:
            with _architecture_only(published):
                return _call_builder(get_model, name, device, {**kwargs, "weights": published})
        except Exception:  # a builder that needs the real tensors (quantized): plain build
            pass
    return _call_builder(get_model, name, device, kwargs)


def _load_checkpoint(
    get_model: Any, name: str, weights: str, default: Any, task: str
) -> tuple[nn.Module, WeightsInfo]:
    """The published architecture with the checkpoint; else the builder's plain one
    (a checkpoint of ``googlenet()`` trained by the user keeps its aux heads)."""
    import torch

    published = default if task != "quantized" else None
    model = _build(get_model, name, torch.device("cpu"), published)
    try:
        return model, load_checkpoint_into(model, weights)
    except WeightsError as first:
        if published is None:
            raise
        plain = _build(get_model, name, torch.device("cpu"))
        try:
            return plain, load_checkpoint_into(plain, weights)
        except WeightsError:
            raise first from None


def _call_builder(get_model: Any, name: str, device: torch.device, kwargs: dict) -> nn.Module:
    import torch

    try:
        with torch.device(device), quiet_builder_warnings():
            return get_model(name, **kwargs)
    except Exception as exc:  # a model that cannot be built on meta is built for real
        if device.type != "meta":
            raise ModelRunError(f"building {name} failed: {first_line(exc)}") from exc
        with torch.device("cpu"), quiet_builder_warnings():
            return get_model(name, **kwargs)


@contextlib.contextmanager
def _architecture_only(member: Any) -> Iterator[None]:
    """While building with ``member``, hand the builder no tensors and load none."""
    from torch import nn

    enum_class = type(member)
    original_get, original_load = enum_class.get_state_dict, nn.Module.load_state_dict

    def nothing(self: Any, *args: Any, **kwargs: Any) -> Any:
        return {}

    def skip(self: nn.Module, state_dict: Any, *args: Any, **kwargs: Any) -> Any:
        from torch.nn.modules.module import _IncompatibleKeys

        return _IncompatibleKeys([], [])

    enum_class.get_state_dict = nothing
    nn.Module.load_state_dict = skip  # type: ignore[method-assign]
    try:
        yield
    finally:
        enum_class.get_state_dict = original_get
        nn.Module.load_state_dict = original_load  # type: ignore[method-assign]


def _choose_torchvision_weights(
    name: str, enum: Any, weights: str, offline: bool
) -> tuple[Any, Path | None, str | None]:
    """Return (enum member or None, cached file, warning) for a --weights value."""
    lowered = weights.lower()
    if lowered == "none" or is_checkpoint_request(weights):
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
    from vizcli.models.download import download

    download(member.url, path, str(member))


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
        with _weights_only_loading(member), quiet_builder_warnings(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle-protocol notes before a refusal
            return get_model(name, weights=member, progress=False)
    except Exception as exc:
        raise WeightsError(
            f"loading {member} from {path} failed: {first_line(exc)}",
            hint="delete the cached file so it is fetched again",
        ) from exc
