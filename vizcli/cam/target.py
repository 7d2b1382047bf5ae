"""Choosing the layer a CAM explains, from the model's structure and outputs alone.

No class or module names are consulted: one forward pass records every layer whose output
has a spatial layout (:mod:`vizcli.layout`), one backward pass finds which of them the class
score depends on, and the last such layer is chosen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vizcli.errors import UsageError
from vizcli.hooks import first_tensor, intercept, model_output
from vizcli.layout import Layout, infer_layout


def find_target_layer(model: nn.Module, batch: torch.Tensor | None) -> str:
    """The layer a CAM should explain: the last whose map positions reach the top class.

    One forward pass on ``batch[:1]`` records every layer whose output has a spatial layout
    (:mod:`vizcli.layout`) with more than one position; the top logit is differentiated with
    respect to all of them at once, and the last such layer (in execution order) whose
    positions, prefix tokens excluded, get a non-zero gradient is chosen. For a CNN that is
    the last convolutional stage; for a ViT pooling its class token the last block's input
    norm (the final norm's patch tokens never reach the class token); for a mean-pooled ViT
    the last block or final norm; for Swin or MaxViT the final norm.

    Layers passing the same map on (a container and its last child, a permute, dropout or
    identity after a layer) count once, under the outermost container or the first layer;
    layers that run more than once per pass (a shared ReLU) are not chosen. A linear layer
    projecting an earlier map (a ViT attention's ``qkv``) is explained at that map: for
    Grad-CAM the same picture up to a constant, with a third of the channels.

    When the top logit reaches no position at all (a zero-initialised classifier, as in
    torchvision's ViTs with random weights), the classifier's input is differentiated
    instead, through a fixed random projection: what could reach the classifier. When even
    that reaches nothing, the last spatial map before the final one is taken.

    A batch the model refuses (a ViT fixed to another size) or ``None`` is replaced by a
    random image of the model's declared input size. The model is left as it was: hooks
    removed, training flags and ``requires_grad`` restored.
    """
    modules = {n: m for n, m in model.named_modules() if n}
    leaves = {n: m for n, m in modules.items() if not any(m.children())}
    records: list[_Record] = []
    calls: dict[str, int] = {}
    inputs: dict[str, torch.Tensor] = {}  # each leaf layer's latest input
    last_input: list[torch.Tensor] = []  # the last leaf layer's input: the classifier's

    def attempt(images: torch.Tensor) -> torch.Tensor | None:
        records.clear()
        calls.clear()
        inputs.clear()
        last_input.clear()
        size, count = images.shape[-2:], images.shape[0]

        def keep(name: str, output: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            tensor = first_tensor(output)
            if tensor is None or not tensor.is_floating_point() or not tensor.requires_grad:
                return output
            layout = infer_layout(tensor.shape, size, count)
            if layout is None or layout.positions < 2:
                return output
            flow = tensor.clone()  # flows on: in-place layers downstream cannot touch tensor
            replaced, done = _replace_first(output, flow)
            if done:
                records.append(_Record(name, tensor, layout, flow))
            return replaced

        def remember(name: str, tensor: torch.Tensor) -> None:
            inputs[name] = tensor
            last_input[:] = [tensor]

        with intercept(model, modules, keep), _inputs_of(leaves, remember), torch.enable_grad():
            model.eval()
            images = images.detach()
            return model_output(model(images.requires_grad_(images.is_floating_point())))

    logits = _forward_any_size(model, batch, attempt)
    groups = _group_repeats(records, calls)
    named = [group for group in groups if group.name is not None]
    if not named:
        raise UsageError("no layer outputs a spatial map to explain", hint="give --layer")
    scores = []
    if logits is not None and logits.requires_grad and logits.numel():
        scores.append(logits.reshape(logits.shape[0], -1)[0].max() if logits.dim() else logits)
    if last_input and last_input[0].requires_grad:
        features = last_input[0]
        direction = torch.randn(features.shape, generator=torch.Generator().manual_seed(0))
        scores.append((features * direction.to(features.device, features.dtype)).sum())
    tensors = [record.tensor for record in records]
    for score in scores:
        grads = torch.autograd.grad(score, tensors, allow_unused=True, retain_graph=True)
        reached = [
            grad is not None and bool(record.layout.to_maps(grad).ne(0).any())
            for grad, record in zip(grads, records, strict=True)
        ]
        for index in reversed(range(len(named))):
            if any(reached[i] for i in named[index].members):
                return _projected_map(named, index, records, modules, inputs)
    return named[-2].name if len(named) > 1 else named[-1].name


def _projected_map(
    named: list[_Group],
    index: int,
    records: list[_Record],
    modules: dict[str, nn.Module],
    inputs: dict[str, torch.Tensor],
) -> str:
    """``named[index]``'s layer, or the earlier map it is a linear projection of (ViT qkv)."""
    name = named[index].name
    if isinstance(modules[name], nn.Linear):
        source = inputs.get(name)
        for earlier in reversed(named[:index]):
            if any(records[i].flow is source for i in earlier.members):
                return earlier.name
    return name


@dataclass
class _Record:
    name: str
    tensor: torch.Tensor  # the layer's output, as produced
    layout: Layout
    flow: torch.Tensor  # the clone handed on in its place


@dataclass
class _Group:
    members: list[int]  # indices of records holding the same maps
    name: str | None  # the layer to report; None: none that ran once


def _forward_any_size(
    model: nn.Module,
    batch: torch.Tensor | None,
    attempt: Callable[[torch.Tensor], torch.Tensor | None],
) -> torch.Tensor | None:
    """``attempt(batch[:1])``; on failure (or no batch), a random image of the declared size."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    declared = _declared_input_size(model)
    noise = torch.Generator(device="cpu").manual_seed(0)
    fallback = torch.randn((1, *declared), generator=noise).to(device, dtype)
    if batch is None:
        return attempt(fallback)
    try:
        return attempt(batch[:1])
    except Exception as error:
        if tuple(batch.shape[1:]) == declared:
            raise
        try:
            return attempt(fallback)
        except Exception:
            raise error from None


def _declared_input_size(model: nn.Module) -> tuple[int, int, int]:
    """(C, H, W) the model says it takes: a fixed image size, timm's config, else 224x224."""
    config = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    declared = config.get("input_size") if isinstance(config, dict) else None
    channels = int(declared[0]) if declared and len(declared) == 3 else 3
    embed = getattr(model, "patch_embed", None)
    for size in (
        getattr(model, "image_size", None),  # torchvision ViT
        getattr(model, "img_size", None),
        getattr(embed, "img_size", None),  # timm, built with img_size=...
        declared[1:] if declared and len(declared) == 3 else None,
    ):
        if isinstance(size, int):
            return (channels, size, size)
        if isinstance(size, tuple | list) and len(size) == 2:
            return (channels, int(size[0]), int(size[1]))
    return (channels, 224, 224)


def _replace_first(output: Any, new: torch.Tensor) -> tuple[Any, bool]:
    """``output`` with its first tensor replaced by ``new`` (plain tuples, lists, dicts)."""
    if isinstance(output, torch.Tensor):
        return new, True
    if isinstance(output, list) or type(output) is tuple:
        items = list(output)
        for i, item in enumerate(items):
            if first_tensor(item) is not None:
                items[i], done = _replace_first(item, new)
                return (type(output)(items), done)
    if type(output) is dict:
        for key, item in output.items():
            if first_tensor(item) is not None:
                replaced, done = _replace_first(item, new)
                return {**output, key: replaced}, done
    return output, False


@contextlib.contextmanager
def _inputs_of(
    modules: dict[str, nn.Module], on_input: Callable[[str, torch.Tensor], None]
) -> Iterator[None]:
    """Call ``on_input(name, tensor)`` with each module's first input tensor as it runs."""

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any) -> None:
            tensor = first_tensor(args)
            if tensor is not None:
                on_input(name, tensor)

        return hook

    handles = []
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(make_hook(name)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _group_repeats(records: list[_Record], calls: dict[str, int]) -> list[_Group]:
    """Runs of records holding the same maps, each with the name to report.

    A record equal to the one before is its container (then named instead, as ``layer4``
    rather than ``layer4.1``) or a pass-through (permute, identity, dropout: not named).
    Layers that ran more than once are never named.
    """
    groups: list[_Group] = []
    previous: torch.Tensor | None = None
    for index, record in enumerate(records):
        maps = record.layout.to_maps(record.tensor.detach())
        once = calls.get(record.name, 0) == 1
        same = (
            previous is not None
            and previous.shape == maps.shape
            and previous.dtype == maps.dtype
            and torch.equal(previous, maps)
        )
        if same:
            group = groups[-1]
            group.members.append(index)
            container = group.name is None or group.name.startswith(record.name + ".")
            if once and container:
                group.name = record.name
        else:
            groups.append(_Group([index], record.name if once else None))
        previous = maps
    return groups
