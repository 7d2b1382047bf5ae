"""The user's own model: ``package.module:factory`` or ``path/to/file.py:factory``.

Importing the target runs its code (as ``python -m`` would). A factory that loads its own
weights keeps them: vizcli reports them "as built by the factory". A model may declare its
preprocessing and labels the way timm models do, in a ``pretrained_cfg`` dict (see
:func:`vizcli.images.preprocess_from_cfg`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli.errors import (
    ModelNotFoundError,
    ModelRunError,
    UsageError,
    WeightsUsageError,
    first_line,
    suggest,
)
from vizcli.models.checkpoints import is_checkpoint_request, load_checkpoint_into
from vizcli.models.devices import resolve_device
from vizcli.models.loaded import LoadedModel, WeightsInfo, on_meta

if TYPE_CHECKING:
    import torch

NO_LOAD_SEEN = (
    "the factory loaded no weights that vizcli saw (no load_state_dict call); "
    "if they are random, these pictures show an untrained network"
)


def is_factory_spec(spec: str) -> bool:
    return ":" in spec and not _looks_like_drive(spec)


def _looks_like_drive(spec: str) -> bool:
    return len(spec) > 2 and spec[1] == ":" and spec[2] in "\\/"


def resolve(spec: str, weights: str, device_name: str, meta: bool) -> LoadedModel:
    from torch import nn

    from vizcli.images import preprocess_from_cfg
    from vizcli.labels import labels_from_cfg

    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ModelNotFoundError(
            f"bad model spec {spec!r}", hint="use module:factory or path/to/file.py:factory"
        )
    device = resolve_device(device_name)
    with _user_folder_first(target):  # the user's folder wins while their code runs, then goes
        module = _import_target(target)
        model, loads = _build_from(module, target, attr, spec, weights, meta)
    if not isinstance(model, nn.Module):
        raise UsageError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")

    if is_checkpoint_request(weights):
        info = load_checkpoint_into(model, weights)
    elif on_meta(model):
        info = WeightsInfo(weights, "factory", name="weights not loaded: built on the meta device")
    else:
        info = WeightsInfo(weights, "factory", warning=None if loads else NO_LOAD_SEEN)
    if not on_meta(model):
        model = model.to(device)
    cfg = getattr(model, "pretrained_cfg", None)
    return LoadedModel(
        model, spec, attr, "factory", None, info, device,
        preprocess_from_cfg(cfg), labels_from_cfg(cfg),
    )  # fmt: skip


def _build_from(
    module: Any, target: str, attr: str, spec: str, weights: str, meta: bool
) -> tuple[Any, list[str]]:
    import torch

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
    lowered = weights.lower()
    if lowered not in ("none", "auto") and not is_checkpoint_request(weights):
        raise WeightsUsageError(
            f"--weights {weights!r} names published weights, but {spec} is a factory model",
            hint="use auto (what the factory built), none, or a checkpoint path",
        )
    use_meta = meta and lowered in ("none", "auto")
    with _watch_loading() as loads:
        model = _call_factory(factory, spec, torch.device("meta") if use_meta else None)
    return model, loads


@contextlib.contextmanager
def _user_folder_first(target: str) -> Iterator[None]:
    """Put the factory's folder (or the current one) first on sys.path, and take it off after.

    While the user's code imports and builds, its siblings import as ``python FILE`` would
    allow; afterwards a ``tensorboard.py`` beside it cannot shadow vizcli's own imports.
    """
    is_path = target.endswith(".py") or "/" in target or os.sep in target
    folder = str(Path(target).parent.resolve()) if is_path else os.getcwd()
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


@contextlib.contextmanager
def _watch_loading() -> Iterator[list[str]]:
    """Record the ``load_state_dict`` calls a factory makes (how vizcli knows it loaded)."""
    from torch import nn

    calls: list[str] = []
    original = nn.Module.load_state_dict

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    nn.Module.load_state_dict = recording  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        nn.Module.load_state_dict = original  # type: ignore[method-assign]


def _import_target(target: str) -> Any:
    is_path = target.endswith(".py") or "/" in target or os.sep in target
    try:
        if is_path:
            return _import_file(Path(target))
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
            raise ModelNotFoundError(
                f"cannot import module {target!r}", hint="check the name and PYTHONPATH"
            ) from exc
        raise ModelRunError(f"importing {target} failed: {first_line(exc)}") from exc
    except (ModelNotFoundError, UsageError):
        raise
    except SystemExit as exc:
        raise ModelRunError(f"importing {target} called sys.exit({exc.code!r})") from exc
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
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    return module


def _call_factory(factory: Any, spec: str, device: torch.device | None) -> Any:
    import torch

    try:
        if device is None:
            return factory()
        try:  # loading a checkpoint into meta parameters is a no-op torch warns about
            with torch.device(device), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return factory()
        except Exception:  # some factories touch data; build those for real
            return factory()
    except SystemExit as exc:
        raise ModelRunError(f"{spec}() called sys.exit({exc.code!r})") from exc
    except Exception as exc:
        raise ModelRunError(f"{spec}() failed: {first_line(exc)}") from exc
