"""Choosing layers by qualified name, shell-style glob or module type."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from vizcli.errors import UsageError, suggest

if TYPE_CHECKING:
    from torch import nn

GLOB_CHARS = "*?["


def named_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every submodule by qualified name (``layer4.1.conv2``), the model itself excluded."""
    return {name: module for name, module in model.named_modules() if name}


def select_layers(
    model: nn.Module,
    patterns: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
) -> dict[str, nn.Module]:
    """Layers matching any name/glob in ``patterns`` and any class name in ``types``.

    With no patterns every layer is a candidate; ``types`` then filters. The result keeps the
    model's order. Unknown names, globs matching nothing and unknown types are usage errors.
    """
    layers = named_layers(model)
    chosen = dict(layers) if not patterns else _by_patterns(layers, patterns)
    if types:
        wanted = _resolve_types(layers, types)
        chosen = {n: m for n, m in chosen.items() if _type_names(m) & wanted}
        if not chosen:
            raise UsageError(
                "no layer matches both the names and the types given",
                hint="see 'vizcli layers MODEL'",
            )
    return chosen


def choose_layers(
    model: nn.Module,
    patterns: Sequence[str] | None,
    types: Sequence[str] | None,
    default: Callable[[nn.Module], dict[str, nn.Module]],
) -> dict[str, nn.Module]:
    """:func:`select_layers` when names or types are given, else the command's ``default``."""
    return select_layers(model, patterns, types) if patterns or types else default(model)


def select_layer(model: nn.Module, pattern: str, option: str = "--layer") -> str:
    """The one layer ``pattern`` names (a name, or a glob matching exactly one layer)."""
    chosen = list(select_layers(model, [pattern]))
    if len(chosen) > 1:
        shown = ", ".join(chosen[:4]) + (", ..." if len(chosen) > 4 else "")
        raise UsageError(
            f"{option} {pattern!r} matches {len(chosen)} layers ({shown}); it takes one here",
            hint="give one name; see 'vizcli layers MODEL'",
        )
    return chosen[0]


def leaf_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Layers without children (convolutions, norms, activations...), in model order."""
    return {n: m for n, m in named_layers(model).items() if not any(m.children())}


def _by_patterns(layers: dict[str, nn.Module], patterns: Sequence[str]) -> dict[str, nn.Module]:
    chosen: dict[str, nn.Module] = {}
    for raw in patterns:
        for pattern in (p.strip() for p in raw.split(",") if p.strip()):
            if any(ch in pattern for ch in GLOB_CHARS):
                matches = [n for n in layers if fnmatch.fnmatchcase(n, pattern)]
                if not matches:
                    raise UsageError(
                        f"layer pattern {pattern!r} matches no layer",
                        hint="see 'vizcli layers MODEL'",
                    )
            elif pattern in layers:
                matches = [pattern]
            else:
                hint = suggest(pattern, layers) or "see 'vizcli layers MODEL'"
                raise UsageError(f"unknown layer {pattern!r}", hint=hint)
            chosen.update((n, layers[n]) for n in matches)
    if not chosen:
        raise UsageError("empty --layer value", hint="give a layer name such as 'layer4.1.conv2'")
    order = list(layers)
    return dict(sorted(chosen.items(), key=lambda item: order.index(item[0])))


def _type_names(module: nn.Module) -> set[str]:
    """A module's class and its base classes, lower-cased: ``--type Conv2d`` takes subclasses."""
    return {klass.__name__.lower() for klass in type(module).__mro__}


def _resolve_types(layers: dict[str, nn.Module], types: Sequence[str]) -> set[str]:
    from torch import nn

    present = {
        klass.__name__
        for m in layers.values()
        for klass in type(m).__mro__
        if issubclass(klass, nn.Module) and klass is not nn.Module
    }
    by_lower = {name.lower(): name for name in present}
    wanted: set[str] = set()
    for raw in types:
        for name in (t.strip() for t in raw.split(",") if t.strip()):
            if name.lower() not in by_lower:
                hint = suggest(name, present) or "types in this model: " + ", ".join(
                    sorted(present)[:8]
                )
                raise UsageError(f"no layer of type {name!r} in this model", hint=hint)
            wanted.add(name.lower())
    if not wanted:
        raise UsageError("empty --type value", hint="give a class name such as Conv2d")
    return wanted


def conv_layers(model: nn.Module, dims: Sequence[int] = (1, 2, 3)) -> dict[str, nn.Module]:
    """Convolutions (``ConvNd``, transposed ones included) in model order."""
    from torch import nn

    kinds = tuple(
        k
        for d, k in (
            (1, (nn.Conv1d, nn.ConvTranspose1d)),
            (2, (nn.Conv2d, nn.ConvTranspose2d)),
            (3, (nn.Conv3d, nn.ConvTranspose3d)),
        )
        if d in dims
        for k in k
    )
    return {n: m for n, m in named_layers(model).items() if isinstance(m, kinds)}


def block_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The children of the longest run of same-typed blocks (a ViT's encoder layers)."""
    from torch import nn

    best: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Sequential | nn.ModuleList):
            continue
        children = list(module.named_children())
        if len(children) > len(best) and len({type(c) for _, c in children}) == 1:
            prefix = f"{name}." if name else ""
            best = {prefix + child_name: child for child_name, child in children}
    return best


def default_feature_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every 2-D convolution; models with at most one (ViT) add their blocks' outputs."""
    from torch import nn

    convs = {n: m for n, m in conv_layers(model, dims=(2,)).items() if isinstance(m, nn.Conv2d)}
    if len(convs) >= 2:
        return convs
    layers = named_layers(model)
    chosen = {**convs, **block_layers(model)}
    order = list(layers)
    return dict(sorted(chosen.items(), key=lambda item: order.index(item[0])))
