"""Resolve a model spec and a ``--weights`` value into a ready model.

A spec names its source: a torchvision name (``resnet18``), a timm name (``timm/convnext_tiny``)
or the user's factory (``package.module:factory``, ``path/to/file.py:factory``). Each source is
one module here; a new source is one new module plus one line in :func:`resolve_model`.
Weights are ``none``, ``auto``, ``DEFAULT``, a source's weights name or a checkpoint path, and
every result carries a :class:`WeightsInfo` saying what was actually loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from vizcli.models import factory, timm, torchvision
from vizcli.models.checkpoints import load_checkpoint_into, read_state_dict
from vizcli.models.devices import offline_requested, resolve_device
from vizcli.models.loaded import LoadedModel, ModelEntry, WeightsInfo
from vizcli.models.torchvision import TASKS, cached_weights_path, list_model_entries, model_tasks

SOURCES = ("torchvision", "timm")

__all__ = [
    "SOURCES",
    "TASKS",
    "LoadedModel",
    "ModelEntry",
    "WeightsInfo",
    "cached_weights_path",
    "list_model_entries",
    "load_checkpoint_into",
    "model_tasks",
    "offline_requested",
    "read_state_dict",
    "resolve_device",
    "resolve_model",
    "reused_results",
    "reusing_models",
]

_reused: dict[tuple, LoadedModel] | None = None
_results: dict[str, dict] | None = None  # other results kept for reuse, by kind


@contextlib.contextmanager
def reusing_models() -> Iterator[None]:
    """Inside, :func:`resolve_model` builds each (spec, weights, device, offline, meta) once
    and hands back a copy of the same :class:`LoadedModel` after that: same module, its own
    preprocessing and labels for a command to change (``vizcli batch``). Safe because no
    command changes the module (:func:`vizcli.hooks.preserved_state`)."""
    global _reused, _results
    previous, _reused = _reused, {}
    previous_results, _results = _results, {}
    try:
        yield
    finally:
        _reused, _results = previous, previous_results


def reused_results(kind: str) -> dict | None:
    """A store for results that only depend on their arguments (``summary``'s walk), kept
    while :func:`reusing_models` is active; ``None`` outside it."""
    return None if _results is None else _results.setdefault(kind, {})


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
    key = (spec, weights, device, offline, meta)
    if _reused is not None and key in _reused:
        return dataclasses.replace(_reused[key])
    if timm.is_timm_spec(spec):
        loaded = timm.resolve(spec, weights, device, offline, meta)
    elif factory.is_factory_spec(spec):
        loaded = factory.resolve(spec, weights, device, meta)
    else:
        loaded = torchvision.resolve(spec, weights, device, offline, meta)
    loaded.model.eval()
    if _reused is not None:
        _reused[key] = dataclasses.replace(loaded)
    return loaded
