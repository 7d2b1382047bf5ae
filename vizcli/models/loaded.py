"""What every model source hands back: the model, its weights, preprocessing and labels."""

from __future__ import annotations

import contextlib
import fnmatch
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vizcli.images import Preprocess

WEIGHT_KINDS = ("random", "torchvision", "timm", "checkpoint", "factory")


@dataclass(frozen=True)
class WeightsInfo:
    """What weights a model really carries, for the terminal, JSON and artifacts."""

    requested: str
    kind: str  # one of WEIGHT_KINDS
    name: str | None = None  # e.g. "ResNet18_Weights.IMAGENET1K_V1", "timm/resnet50.a1_in1k"
    path: str | None = None  # file the tensors came from
    warning: str | None = None  # set when the request could not be honoured as asked

    @property
    def pretrained(self) -> bool:
        return self.kind != "random"

    def describe(self) -> str:
        if self.kind in ("torchvision", "timm"):
            return f"{self.name} (from {self.path})"
        if self.kind == "checkpoint":
            return f"checkpoint {self.path}"
        if self.kind == "factory":
            detail = self.name or self.path
            return "as built by the factory" + (f" ({detail})" if detail else "")
        return "none (random init)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pretrained": self.pretrained, "description": self.describe()}


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
    source: str  # "torchvision", "timm" or "factory"
    task: str | None
    weights: WeightsInfo
    device: torch.device
    preprocess: Preprocess
    categories: list[str] | None = None
    notes: tuple[str, ...] = ()  # facts about how the model was built, shown with its output

    def describe(self) -> dict[str, Any]:
        """The model as JSON output and manifests report it."""
        return {
            "spec": self.spec,
            "name": self.name,
            "source": self.source,
            "task": self.task,
            "class": type(self.model).__name__,
            "preprocessing": self.preprocess.to_dict(),
            "labels": len(self.categories) if self.categories else None,
        }

    def require_single_input(self, command: str) -> None:
        """Image commands feed one batch: refuse a forward that needs more, before any work."""
        import inspect

        from vizcli.errors import UsageError

        try:
            parameters = inspect.signature(self.model.forward).parameters.values()
        except (TypeError, ValueError):  # builtins, C extensions: nothing to check
            return
        required = [
            p.name
            for p in parameters
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(required) > 1 or self.task == "optical_flow":
            names = ", ".join(required) or "two images"
            raise UsageError(
                f"{self.spec}'s forward takes {len(required) or 2} inputs ({names}); "
                f"{command} feeds it one batch of images",
                hint="'vizcli summary' and 'vizcli graph' take several --input shapes",
            )

    @property
    def input_device(self) -> torch.device:
        """Where inputs go: the first parameter's device (a factory may place its model
        itself), else the device asked for."""
        return next((p.device for p in self.model.parameters()), self.device)

    @property
    def default_input_shapes(self) -> list[tuple[int, ...]]:
        """Input shapes the model expects by default (one per forward argument)."""
        shape = self.preprocess.input_shape()
        if self.task == "video":
            shape = (shape[0], shape[1], 16, *shape[2:])
        return [shape, shape] if self.task == "optical_flow" else [shape]


def matches(name: str, pattern: str) -> bool:
    """A glob when the pattern has glob characters, else a case-insensitive substring."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatch(name, pattern)
    return pattern.lower() in name.lower()


def on_meta(model: nn.Module) -> bool:
    return any(p.is_meta for p in model.parameters())


@contextlib.contextmanager
def quiet_builder_warnings() -> Iterator[None]:
    """Hide builders' FutureWarnings (inception/googlenet init, timm deprecations): noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield
