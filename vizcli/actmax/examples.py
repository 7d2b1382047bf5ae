"""Dataset examples: the given images that excite each target most, cropped around the peak.

Each image is run through the same cut model as the optimisation. An image's value for a
target is what the optimisation maximised (a channel's mean, a logit), except for a single
unit: a unit at any position is the same filter, so an image counts with its best position.
The crop is a square around the strongest position of the target's channel, three map cells
wide (a quarter of the picture at least), as the Distill article shows dataset examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

    from vizcli.actmax.optimize import TargetResult
    from vizcli.actmax.targets import Reader
    from vizcli.models import LoadedModel

BATCH = 8
CROP_CELLS = 3


@dataclass
class Example:
    image: str  # the image's label (its name, made unique)
    value: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the model input's pixels
    crop: np.ndarray | None = None  # H x W x 3 uint8, the box resized to the input size


def dataset_examples(
    loaded: LoadedModel,
    forward: Callable[[torch.Tensor], torch.Tensor],
    reader: Reader,
    paths: Sequence[Path],
    results: Sequence[TargetResult],
    top: int,
) -> None:
    """Fill each result's ``example_values`` (every image) and ``examples`` (the ``top``)."""
    import torch

    from vizcli.images import load_tensor, unique_labels

    labels = unique_labels(paths)
    values, boxes = [], []
    for start in range(0, len(paths), BATCH):
        batch = torch.cat([load_tensor(p, loaded.preprocess) for p in paths[start : start + BATCH]])
        with torch.no_grad():
            output = forward(batch.to(loaded.input_device))
        found, found_boxes = _measure(reader, output, tuple(batch.shape[-2:]))
        values.append(found)
        boxes.extend(found_boxes)
    table = torch.cat(values).cpu()  # images x targets
    for t, result in enumerate(results):
        column = table[:, t]
        result.example_values = column.tolist()
        best = column.argsort(descending=True, stable=True)[:top].tolist()
        result.examples = [Example(labels[i], float(column[i]), boxes[i][t]) for i in best]
    _crop(loaded, paths, labels, results)


def _measure(
    reader: Reader, output: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, list[list[tuple[int, int, int, int]]]]:
    """Each target's value on each image, and the box around its strongest position."""
    height, width = size
    whole = (0, 0, width, height)
    maps = reader.maps(output)
    if maps is None:
        values = reader.values(output).float()
        return values, [[whole] * values.shape[1] for _ in range(values.shape[0])]
    flat = maps.float().flatten(2)
    values = flat.amax(2) if reader.neuron else flat.mean(2)
    grid_h, grid_w = maps.shape[-2:]
    peaks = flat.argmax(2).cpu()
    boxes = [
        [_box(int(p) // grid_w, int(p) % grid_w, (grid_h, grid_w), size) for p in row]
        for row in peaks
    ]
    return values, boxes


def _box(
    row: int, column: int, grid: tuple[int, int], size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """A square around map cell (row, column), inside the ``size`` picture."""
    height, width = size
    cell = max(height / grid[0], width / grid[1])
    side = round(min(max(CROP_CELLS * cell, min(height, width) / 4), min(height, width)))
    cy, cx = (row + 0.5) * height / grid[0], (column + 0.5) * width / grid[1]
    y0 = min(max(round(cy - side / 2), 0), height - side)
    x0 = min(max(round(cx - side / 2), 0), width - side)
    return (x0, y0, x0 + side, y0 + side)


def _crop(
    loaded: LoadedModel,
    paths: Sequence[Path],
    labels: Sequence[str],
    results: Sequence[TargetResult],
) -> None:
    """The crops of the chosen examples, from the model's input as it saw it."""
    import numpy as np
    from PIL import Image

    from vizcli.draw.overlays import to_pixels
    from vizcli.images import load_tensor

    wanted = {e.image for r in results for e in r.examples}
    pixels = {}
    for path, label in zip(paths, labels, strict=True):
        if label in wanted:
            tensor = load_tensor(path, loaded.preprocess)[0]
            pixels[label] = to_pixels(loaded.preprocess.denormalize(tensor))  # clamped there
    for result in results:
        for example in result.examples:
            image = pixels[example.image]
            x0, y0, x1, y1 = example.box
            height, width = image.shape[:2]
            crop = Image.fromarray(image[y0:y1, x0:x1]).resize((width, height), Image.BICUBIC)
            example.crop = np.asarray(crop)
