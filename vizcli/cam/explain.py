"""`vizcli cam` as a library call: predictions, maps, pictures, and optional checks.

For each batch of images the chosen method runs once per requested class; each map is
normalised, upsampled to the input, drawn (overlay, raw map, panel) and handed to the sinks
at once. The caller's model is never changed: every forward pass runs in eval mode inside
:func:`vizcli.hooks.preserved_state`, which hands the model back as it was (training flags,
``requires_grad``, ``.grad``, parameter memory formats, buffers; hooks removed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vizcli import artifacts
from vizcli.cam import metrics as cam_metrics
from vizcli.cam.base import LayerProbe, get_method, upsample
from vizcli.cam.target import find_target_layer
from vizcli.draw.grids import normalize
from vizcli.errors import UsageError
from vizcli.hooks import model_output, preserved_state
from vizcli.images import unique_labels
from vizcli.labels import class_names, resolve_targets
from vizcli.layers import select_layer
from vizcli.models import LoadedModel

Emit = artifacts.Emit


@dataclass(frozen=True)
class CamOptions:
    method: str = "gradcam"
    layer: str | None = None
    targets: tuple[str, ...] = ()  # class indices or names; empty: top-k predictions
    topk: int = 1
    alpha: float = 0.5
    colormap: str = "jet"
    batch_size: int = 8
    npy: bool = False
    metrics: bool = False
    sanity: bool = False
    seed: int = 0  # noise of SmoothGrad-like methods, the same for every image
    frame: str = "original"  # pictures in the photo's frame ("original") or the input's
    sanity_depth: int = 2  # the blocks re-initialised one by one: modules at this depth
    sanity_images: int = 0  # how many images the sanity check uses (0: all)

    def __post_init__(self) -> None:
        """A bad method, frame or colormap is refused before anything is loaded."""
        from vizcli.draw.colormaps import lookup_table

        get_method(self.method)
        if self.frame not in ("original", "input"):
            raise UsageError(f"--frame must be original or input, got {self.frame!r}")
        lookup_table(self.colormap)


@dataclass
class Prediction:
    index: int
    name: str
    probability: float
    rank: int = 0  # 1 for the most probable class


@dataclass
class CamResult:
    image: str
    rank: int  # 0 for the top class (or the first --target)
    target: Prediction
    map: torch.Tensor  # h x w in [0, 1], the method's own resolution
    raw: torch.Tensor | None = None  # h x w, the method's own values (what --npy saves)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class CamReport:
    method: str
    title: str
    layer: str | None
    layer_chosen_automatically: bool
    predictions: dict[str, list[Prediction]] = field(default_factory=dict)
    results: list[CamResult] = field(default_factory=list)
    sanity: list[dict[str, Any]] = field(default_factory=list)  # per stage, mean over images
    sanity_images: list[dict[str, Any]] = field(default_factory=list)  # per image and stage
    constant_maps: int = 0  # maps with no contrast (all equal, or not finite)
    outputs: int | None = None  # how many classes the model scores
    preprocessing: dict[str, dict[str, Any]] = field(default_factory=dict)  # per image

    def manifest_details(self, options: CamOptions) -> dict[str, Any]:
        """What the manifest adds for cam: how each image was preprocessed, how maps were
        scaled for the pictures, and the seed of noisy methods."""
        return {
            "method": self.method,
            "layer": self.layer,
            "frame": options.frame,
            "seed": options.seed,
            "normalization": {
                "pictures": "each map min-max scaled to [0, 1] on its own, then upsampled "
                "bilinearly to the model's crop",
                "npy": "the method's raw values at its own resolution, not normalised",
            },
            "preprocessing": self.preprocessing,
            **({"sanity": {"depth": options.sanity_depth, "verdict": self.sanity_verdict(),
                           "stages": self.sanity, "images": self.sanity_images}}
               if self.sanity else {}),
        }  # fmt: skip

    def layer_line(self) -> str | None:
        """Which layer the maps come from, and how it was chosen (None for saliency)."""
        if not self.layer:
            return None
        how = (
            "chosen automatically: the last spatial layer the class score depends on"
            if self.layer_chosen_automatically
            else "as given"
        )
        return f"{self.title} on layer {self.layer} ({how})"

    def sanity_measures(self) -> list[str]:
        """The similarity measures worth showing: the rank correlation of absolute values only
        where it differs from the signed one (never for maps that are all >= 0, as every
        method's here are)."""
        signed_only = all(abs(row["spearman"] - row["spearman_abs"]) < 1e-12 for row in self.sanity)
        return [k for k in cam_metrics.SANITY_MEASURES if not (signed_only and k == "spearman_abs")]

    def sanity_verdict(self) -> str | None:
        """'depends on the model' when the final rank correlation falls below 0.5."""
        if not self.sanity:
            return None
        final = self.sanity[-1]["spearman"]
        return "depends on the model" if final < 0.5 else "insensitive to the model"

    def sanity_message(self) -> tuple[bool, str] | None:
        """(passed, one line) for the terminal: do the maps depend on the learned weights?"""
        verdict = self.sanity_verdict()
        if verdict is None:
            return None
        final = self.sanity[-1]["spearman"]
        if verdict == "depends on the model":
            return True, (
                f"sanity: {self.title} maps change when the weights are randomised "
                f"(rank correlation {final:.2f}): they depend on what the model learned"
            )
        return False, (
            f"sanity: {self.title} maps barely change when the weights are randomised "
            f"(rank correlation {final:.2f}): they show the input's structure, not what "
            "this model learned"
        )

    def labels_warning(self, loaded: LoadedModel) -> str | None:
        """One line when the class names at hand do not fit the model's outputs."""
        names, outputs = loaded.categories, self.outputs
        if not names or outputs is None or len(names) == outputs:
            return None
        return (
            f"{len(names)} class names for a model with {outputs} outputs; classes are shown "
            "as 'class N' (check --labels or the model's label_names)"
        )

    def constant_warning(self) -> str | None:
        """One line when any map is constant, with the usual cause."""
        if not self.constant_maps:
            return None
        return (
            f"{self.constant_maps} of {len(self.results)} {self.title} maps are constant "
            "(all equal, or not finite): the class score does not depend on the layer's "
            "positions, usually because its gradient is zero (a zero-initialised head, as "
            "in torchvision's ViTs with random weights) or the layer is after the pooling"
        )


def choose_layer(model: nn.Module, batch: torch.Tensor, name: str | None) -> tuple[str, bool]:
    """The layer to explain: as given, or found by :func:`vizcli.cam.target.find_target_layer`
    (the last layer whose spatial positions reach the top class; one image, one backward)."""
    if name:
        return select_layer(model, name), False
    return find_target_layer(model, batch), True


def _photo_and_box(path: Path, loaded: LoadedModel) -> tuple[Any, list[float], dict[str, Any]]:
    """The photo as RGB pixels, the crop box the model saw, and the whole preprocessing."""
    import numpy as np

    from vizcli.images import load_image

    mode = "L" if loaded.preprocess.channels == 1 else "RGB"
    photo = np.asarray(load_image(path, mode).convert("RGB"))
    geometry = loaded.preprocess.geometry(photo.shape[1], photo.shape[0])
    return photo, geometry["crop_box"], geometry


def explain(
    loaded: LoadedModel,
    images: Sequence[Path],
    options: CamOptions,
    emit: Emit,
    progress: Callable[[int], None] | None = None,
) -> CamReport:
    """Explain each image's predicted (or given) classes with ``options.method``."""
    from vizcli.draw import overlays
    from vizcli.images import load_tensor

    method = get_method(options.method)
    method.seed = options.seed
    model, device = loaded.model, loaded.device
    first = load_tensor(images[0], loaded.preprocess).to(device)
    layer, automatic = (None, False)
    if method.uses_layer:
        layer, automatic = choose_layer(model, first, options.layer)
    probe = LayerProbe(model, layer)
    labels = unique_labels(images)  # predictions table, results, file names: one label each
    report = CamReport(method.name, method.title, layer, automatic)
    names = loaded.categories
    explicit: list[int] = []
    if options.targets:
        if names is None:
            with preserved_state(model), torch.no_grad():
                names = class_names(loaded.categories, model_output(model(first)).shape[1])
        explicit = resolve_targets(options.targets, names)
    sanity_batches: list[tuple[torch.Tensor, torch.Tensor]] = []
    sanity_labels: list[str] = []
    for start in range(0, len(images), options.batch_size):
        paths = images[start : start + options.batch_size]
        batch = torch.cat([load_tensor(p, loaded.preprocess) for p in paths]).to(device)
        count = len(paths)
        frames = [_photo_and_box(p, loaded) for p in paths] if options.frame == "original" else []
        for offset, (_, _, geometry) in enumerate(frames):
            report.preprocessing[labels[start + offset]] = geometry
        first_classes = torch.full((count,), explicit[0], device=device) if explicit else None
        maps, logits = method(probe, batch, first_classes)
        report.outputs = logits.shape[1]
        if names is None or len(names) != logits.shape[1]:
            names = class_names(loaded.categories, logits.shape[1])
        probabilities = torch.softmax(logits.float(), 1).cpu()
        ranked = probabilities.topk(min(max(options.topk, 5), probabilities.shape[1]), 1)
        classes_per_rank = (
            [torch.full((count,), index) for index in explicit]
            if explicit
            else [ranked.indices[:, r] for r in range(min(options.topk, logits.shape[1]))]
        )
        order = probabilities.argsort(1, descending=True).argsort(1) + 1  # rank of each class
        for offset in range(count):
            shown = [int(i) for i in ranked.indices[offset]]
            shown += [i for i in explicit if i not in shown]  # explained classes always listed
            report.predictions[labels[start + offset]] = [
                Prediction(i, names[i], float(probabilities[offset, i]), int(order[offset, i]))
                for i in shown
            ]
        for rank, classes in enumerate(classes_per_rank):
            if rank > 0:
                maps, _ = method(probe, batch, classes.to(device))
            raw = maps.float().cpu()
            flat = raw.flatten(1)
            report.constant_maps += int(
                ((flat.amax(1) == flat.amin(1)) | ~torch.isfinite(flat).all(1)).sum()
            )
            normalized = normalize(raw, "each")
            big = upsample(normalized, tuple(batch.shape[-2:]))
            for offset in range(count):
                cls = int(classes[offset])
                probability = float(probabilities[offset, cls])
                target = Prediction(cls, names[cls], probability, int(order[offset, cls]))
                result = CamResult(
                    labels[start + offset], rank, target, normalized[offset], raw=raw[offset]
                )
                if options.metrics:
                    result.metrics = cam_metrics.faithfulness(
                        model, batch[offset : offset + 1], cls, big[offset]
                    )
                report.results.append(result)
                image = loaded.preprocess.denormalize(batch[offset].float().cpu())
                photo, box = frames[offset][:2] if frames else (None, None)
                for item in overlays.cam_artifacts(
                    image, big[offset], result, method.name, options, start + offset, photo, box
                ):
                    emit(item)
        wanted = options.sanity_images or len(images)
        if options.sanity and len(sanity_labels) < wanted:
            take = min(count, wanted - len(sanity_labels))
            sanity_batches.append((batch[:take], classes_per_rank[0][:take].to(device)))
            sanity_labels.extend(labels[start : start + take])
        if progress:
            progress(len(paths))
    if sanity_batches:
        found = cam_metrics.cascading_randomization(
            model, method, layer, torch.cat([b for b, _ in sanity_batches]),
            torch.cat([c for _, c in sanity_batches]), sanity_labels, options.sanity_depth,
            options.batch_size,
        )  # fmt: skip
        report.sanity, report.sanity_images = found["stages"], found["images"]
        for step, row in enumerate(report.sanity):
            for key in cam_metrics.SANITY_MEASURES:
                emit(artifacts.Scalar(f"sanity/{method.name}/{key}", row[key], step))
        emit(artifacts.Image(f"sanity/{method.name}/curve", overlays.sanity_curve(report)))
    return report
