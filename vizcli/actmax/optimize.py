"""Activation maximisation: pictures optimised so that chosen targets fire as hard as they can.

All targets are optimised together as one batch (picture ``b`` for target ``b``): each step
renders the pictures from their parameterisation (:mod:`.parameterize`), moves each one at
random (:mod:`.robustness`), normalises them as the model's preprocessing would, runs the
model only as far as the target layer (:func:`vizcli.hooks.run_until`) and takes one Adam
step on ``-sum_b value_b(picture_b)``. The model's weights take no gradient.

Runs are reproducible: one ``torch.Generator`` seeded with ``seed`` draws the start and
every transform, and the global random state is not touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli import artifacts
from vizcli.actmax.parameterize import PARAMETERIZATIONS, make_picture
from vizcli.actmax.robustness import Robustness
from vizcli.actmax.targets import (
    DEFAULT_COUNT,
    Reader,
    Target,
    read_layout,
    unit_targets,
)
from vizcli.errors import UsageError

if TYPE_CHECKING:
    import torch

    from vizcli.actmax.examples import Example
    from vizcli.models import LoadedModel

OUTPUT = "output"  # the layer name the logits are reported under


@dataclass(frozen=True)
class ActmaxOptions:
    layer: str | None = None
    channels: tuple[int, ...] = ()
    count: int = DEFAULT_COUNT  # --channels N: the first N channels
    classes: tuple[str, ...] = ()
    neuron: bool = False
    steps: int = 256
    lr: float = 0.05
    seed: int = 0
    parameterization: str = "fourier"
    robust: bool = True
    snapshots: int = 8  # pictures of the progress in TensorBoard
    top: int = 4  # dataset examples per target

    def __post_init__(self) -> None:
        """Contradictions are refused before any model is built."""
        if self.parameterization not in PARAMETERIZATIONS:
            raise UsageError(
                f"unknown --param {self.parameterization!r}", hint=", ".join(PARAMETERIZATIONS)
            )
        if self.classes and (self.layer or self.channels or self.neuron):
            raise UsageError(
                "--class optimises the model's logits; it takes no --layer, --channel or --neuron",
                hint="use --layer with --channel for units inside the network",
            )
        if not self.classes and not self.layer:
            raise UsageError(
                "actmax needs a --layer (with --channel or --channels) or a --class",
                hint="see 'vizcli layers MODEL' for the layer names",
            )


@dataclass
class TargetResult:
    target: Target
    picture: torch.Tensor  # 3 x H x W in [0, 1]
    start: float  # value on the starting picture
    final: float  # value on the final picture, seen as it is (no transform)
    examples: list[Example] = field(default_factory=list)
    example_values: list[float] = field(default_factory=list)  # on every example image

    @property
    def examples_mean(self) -> float | None:
        values = self.example_values
        return sum(values) / len(values) if values else None

    @property
    def examples_max(self) -> float | None:
        return max(self.example_values) if self.example_values else None


@dataclass
class ActmaxReport:
    layer: str
    options: ActmaxOptions
    size: tuple[int, int]
    results: list[TargetResult] = field(default_factory=list)
    matrix: list[list[float]] = field(default_factory=list)  # value of target t on picture b
    seconds: float = 0.0

    def selectivity(self, index: int) -> float | None:
        """Target ``index`` on its own picture minus its best on the others' (``None`` alone):
        positive when the picture is specific to its target, in the target's own units."""
        own = self.matrix[index][index]
        others = [row[index] for b, row in enumerate(self.matrix) if b != index]
        return own - max(others) if others else None

    def manifest_details(self) -> dict[str, Any]:
        options = self.options
        return {
            "actmax": {
                "layer": self.layer,
                "parameterization": options.parameterization,
                "transforms": options.robust,
                "steps": options.steps,
                "lr": options.lr,
                "seed": options.seed,
                "size": list(self.size),
                "seconds": round(self.seconds, 3),
                "targets": [
                    {
                        "kind": r.target.kind,
                        "index": r.target.index,
                        "name": r.target.name,
                        "start": r.start,
                        "final": r.final,
                        "examples_mean": r.examples_mean,
                        "examples_max": r.examples_max,
                        "top_examples": [[e.image, e.value] for e in r.examples],
                    }
                    for r in self.results
                ],
                "matrix": self.matrix,
            }
        }


class Renderer:
    """The model, cut at the target layer, as a function of pictures in [0, 1]."""

    def __init__(self, loaded: LoadedModel, forward: Callable) -> None:
        import torch

        preprocess = loaded.preprocess
        device = loaded.input_device
        self.mean = torch.tensor(preprocess.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(preprocess.std, device=device).view(1, -1, 1, 1)
        self.grey = preprocess.channels == 1
        self.forward = forward

    def __call__(self, pictures: torch.Tensor) -> torch.Tensor:
        if self.grey:
            pictures = pictures.mean(1, keepdim=True)
        return self.forward((pictures - self.mean) / self.std)


def maximize(
    loaded: LoadedModel,
    options: ActmaxOptions,
    emit: artifacts.Emit,
    examples: Sequence[Path] = (),
    progress: Callable[[int], None] | None = None,
) -> ActmaxReport:
    """Optimise one picture per target; measure them, and the example images, on the targets."""
    import torch

    from vizcli.hooks import model_output, preserved_state, run_until
    from vizcli.labels import class_names, resolve_targets
    from vizcli.layers import select_layer

    model = loaded.model
    size = tuple(loaded.preprocess.crop)
    started = time.perf_counter()
    if options.layer:
        name = select_layer(model, options.layer)
        cut = run_until(model, name, dict(model.named_modules())[name])
    else:
        name = OUTPUT
        cut = preserved_state(model)
    with cut as forward, torch.enable_grad():
        if not options.layer:
            forward = lambda x: model_output(model(x))  # noqa: E731
        for param in model.parameters():
            param.requires_grad_(False)  # restored by the guard
        render = Renderer(loaded, forward)
        grey = torch.full((1, 3, *size), 0.5, device=loaded.input_device)
        with torch.no_grad():
            probe = render(grey)
        layout, available = read_layout(probe, size, name)
        if options.classes:
            names = class_names(loaded.categories, available)
            indices = resolve_targets(options.classes, names)
            targets = [Target("class", i, names[i]) for i in indices]
            layout = None
        else:
            neuron = options.neuron and layout is not None
            targets = unit_targets(options.channels, options.count, available, neuron, name)
        reader = Reader(targets, layout)
        report = ActmaxReport(name, options, size)  # type: ignore[arg-type]
        pictures, starts = _optimize(render, reader, options, size, emit, name, progress)
        with torch.no_grad():
            report.matrix = reader.values(render(pictures)).float().cpu().tolist()
        report.results = [
            TargetResult(t, pictures[i].cpu(), starts[i], report.matrix[i][i])
            for i, t in enumerate(targets)
        ]
        if examples:
            from vizcli.actmax.examples import dataset_examples

            dataset_examples(loaded, forward, reader, examples, report.results, options.top)
    report.seconds = time.perf_counter() - started
    for item in pictures_of(report):
        emit(item)
    return report


def pictures_of(report: ActmaxReport) -> list[artifacts.Image]:
    """The final sheet (each picture, and its top examples when given) and one per target."""
    from vizcli.draw.overlays import to_pixels
    from vizcli.draw.sheets import tile_sheet

    rows = []
    for result in report.results:
        tiles = [to_pixels(result.picture.clamp(0, 1))]
        captions = [f"{result.target.name}: {result.final:.3g}"]
        for example in result.examples:
            tiles.append(example.crop)
            captions.append(f"{example.image}: {example.value:.3g}")
        rows.append((tiles, captions))
    step = report.options.steps
    tag = f"actmax/{report.layer}"
    if any(len(tiles) > 1 for tiles, _ in rows):
        columns = max(len(tiles) for tiles, _ in rows)
        tiles = [t for row, _ in rows for t in row + [row[0] * 0 + 255] * (columns - len(row))]
        captions = [c for row, cs in rows for c in cs + [""] * (columns - len(row))]
        sheet = tile_sheet(tiles, captions, columns)
    else:
        sheet = tile_sheet([row[0] for row, _ in rows], [cs[0] for _, cs in rows])
    images = [artifacts.Image(tag, sheet, step, role="result")]
    for result, (tiles, captions) in zip(report.results, rows, strict=True):
        name = result.target.name.replace(" ", "_")
        images.append(
            artifacts.Image(
                f"{tag}/{name}", tile_sheet(tiles, captions, len(tiles)), step, role="result"
            )
        )
    return images


def _optimize(
    render: Renderer,
    reader: Reader,
    options: ActmaxOptions,
    size: tuple[int, int],
    emit: artifacts.Emit,
    layer: str,
    progress: Callable[[int], None] | None,
) -> tuple[torch.Tensor, list[float]]:
    """The optimisation loop; returns the final pictures and each target's starting value."""
    import torch

    from vizcli.draw.sheets import picture_grid

    generator = torch.Generator().manual_seed(options.seed)
    count = len(reader.targets)
    picture = make_picture(options.parameterization, count, size, generator)
    device = render.mean.device
    picture.to(device)
    optimizer = torch.optim.Adam(picture.parameters, lr=options.lr)
    robustness = Robustness() if options.robust else None
    names = [t.name for t in reader.targets]
    snapshots = _snapshot_steps(options.steps, options.snapshots)
    every = max(1, options.steps // 64)
    tag = f"actmax/{layer}"

    def snapshot(step: int) -> None:
        sheet = picture_grid(picture.rgb(), names)
        emit(artifacts.Image(tag, sheet, step, role="progress"))

    with torch.no_grad():
        starts = reader.values(render(picture.rgb())).diagonal().float().cpu().tolist()
        if options.snapshots:
            snapshot(0)
    for step in range(1, options.steps + 1):
        pictures = picture.rgb()
        seen = robustness.apply(pictures, generator) if robustness else pictures
        values = reader.values(render(seen)).diagonal()
        optimizer.zero_grad(set_to_none=True)
        (-values.sum()).backward()
        optimizer.step()
        picture.after_step()
        if step % every == 0 or step == options.steps:
            for target, value in zip(reader.targets, values.detach().cpu().tolist(), strict=True):
                emit(artifacts.Scalar(f"{tag}/{target.name}", value, step))
        if step in snapshots and step < options.steps:
            with torch.no_grad():
                snapshot(step)
        if progress:
            progress(1)
    with torch.no_grad():
        return picture.rgb().detach(), starts


def _snapshot_steps(steps: int, count: int) -> set[int]:
    """``count`` steps spread evenly over the run, the last one included."""
    return {max(1, round(k * steps / count)) for k in range(1, count + 1)} if count else set()
