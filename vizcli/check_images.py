"""The rules of ``vizcli check`` that run the model on images: finite outputs, dead units,
expected classes and the CAM sanity check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli.check import Outcome, Rules

if TYPE_CHECKING:
    import torch

    from vizcli.models import LoadedModel

BATCH = 8


def activation_layers(model: Any) -> dict[str, Any]:
    """Modules from ``torch.nn.modules.activation`` (ReLU, ReLU6, GELU, SiLU...): the layers
    whose channels can be dead. Functional activations inside a forward are not seen."""
    from torch.nn.modules import activation

    kinds = tuple(c for c in vars(activation).values()
                  if isinstance(c, type) and c.__module__ == activation.__name__)  # fmt: skip
    return {n: m for n, m in model.named_modules() if n and isinstance(m, kinds)}


def image_checks(loaded: LoadedModel, rules: Rules) -> list[Outcome]:
    import torch

    from vizcli.hooks import capture, model_output
    from vizcli.images import find_images, load_tensor
    from vizcli.layers import leaf_layers

    paths = find_images([Path(p) for p in rules.images]) if rules.images else []
    model, device = loaded.model, loaded.input_device
    watched = leaf_layers(model)
    activations = activation_layers(model)
    nonfinite: dict[str, int] = {}
    fired: dict[str, torch.Tensor] = {}  # activation layer -> channels ever above zero
    size: list[int] = []
    calls: dict[str, int] = {}

    def on_output(name: str, output: torch.Tensor) -> None:
        if not output.is_floating_point():
            return
        bad = int((~torch.isfinite(output)).sum())
        if bad:
            nonfinite[name] = nonfinite.get(name, 0) + bad
        if name in activations:  # a module called twice (a shared ReLU) counts per call
            calls[name] = calls.get(name, 0) + 1
            key = name if calls[name] == 1 else f"{name} (call {calls[name]})"
            seen = (_channels(output, size) > 0).any(0)
            fired[key] = fired[key] | seen if key in fired else seen

    scan = rules.finite or rules.max_dead_units is not None
    with capture(model, watched, on_output), torch.no_grad():
        for start in range(0, len(paths) if scan else 0, BATCH):
            batch = torch.cat(
                [load_tensor(p, loaded.preprocess) for p in paths[start : start + BATCH]]
            )
            size[:] = list(batch.shape[-2:])
            calls.clear()
            logits = model_output(model(batch.to(device)))
            bad = int((~torch.isfinite(logits)).sum())
            if bad:
                nonfinite["(output)"] = nonfinite.get("(output)", 0) + bad
    outcomes = []
    if rules.finite:
        total = sum(nonfinite.values())
        where = ", ".join(f"{n}: {c}" for n, c in list(nonfinite.items())[:3])
        detail = f"first in {where}" if total else f"{len(paths)} images"
        outcomes.append(Outcome("finite", total == 0, f"{total} NaN/Inf values", "0", detail))
    if rules.max_dead_units is not None:
        outcomes.append(_dead_units(fired, rules.max_dead_units, len(paths)))
    for image, expected in rules.expect:
        outcomes.append(_expected(loaded, image, expected))
    if rules.cam_sanity and paths:
        outcomes.append(_sanity(loaded, paths))
    return outcomes


def _channels(output: torch.Tensor, size: list[int]) -> torch.Tensor:
    """``N x C`` per-image channel maxima of an activation output (maps, tokens or vectors)."""
    from vizcli.layout import infer_layout

    layout = infer_layout(output.shape, size, output.shape[0], loose=True)
    if layout is not None:
        return layout.to_maps(output).flatten(2).amax(2)
    return output.flatten(2).amax(2) if output.dim() > 2 else output


def _dead_units(fired: dict[str, Any], limit: float, images: int) -> Outcome:
    if not fired:
        return Outcome("max-dead-units", True, "no activation layers", f"{limit:.0%}")
    shares = {name: 1 - float(seen.float().mean()) for name, seen in fired.items()}
    worst = max(shares, key=lambda n: shares[n])
    seen = fired[worst]
    detail = (f"{worst}: {int((~seen).sum())} of {seen.numel()} channels never fire on "
              f"{images} images")  # fmt: skip
    return Outcome("max-dead-units", shares[worst] <= limit, f"{shares[worst]:.1%}",
                   f"{limit:.1%}", detail)  # fmt: skip


def _expected(loaded: LoadedModel, image: str, expected: str) -> Outcome:
    import torch

    from vizcli.hooks import model_output, preserved_state
    from vizcli.images import load_tensor
    from vizcli.labels import class_names, resolve_targets

    batch = load_tensor(image, loaded.preprocess).to(loaded.input_device)
    with preserved_state(loaded.model), torch.no_grad():
        logits = model_output(loaded.model(batch))
    names = class_names(loaded.categories, logits.shape[1])
    wanted = resolve_targets([expected], names)[0]
    got = int(logits.argmax(1)[0])
    probability = float(torch.softmax(logits.float(), 1)[0, got])
    return Outcome(f"expect {Path(image).name}", got == wanted, f"{names[got]} ({probability:.0%})",
                   names[wanted], relation="expected")  # fmt: skip


def _sanity(loaded: LoadedModel, paths: list[Path]) -> Outcome:
    from vizcli.cam.explain import CamOptions, explain

    report = explain(loaded, paths, CamOptions(sanity=True, batch_size=BATCH), lambda item: None)
    final = report.sanity[-1]["spearman"]
    passed, _ = report.sanity_message() or (False, "")
    return Outcome("cam-sanity", passed, f"rank correlation {final:.2f} after randomisation",
                   "below 0.50", f"Grad-CAM on {report.layer}", relation="needed")  # fmt: skip
