"""What computations hand to the sinks: named images, histograms, scalars and text."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Image:
    tag: str  # "fmaps/features.0", "kernels/conv1"
    pixels: np.ndarray  # H x W x 3, uint8
    step: int = 0
    label: str | None = None  # e.g. the input image's name, used in PNG file names
    role: str = "image"  # "progress": a step on the way (TensorBoard only); "result": its end

    @functools.cached_property
    def png(self) -> bytes:
        """PNG-encoded once, shared by every sink. Level 1: ~4x faster than PIL's default."""
        from PIL import Image as PILImage

        buffer = io.BytesIO()
        PILImage.fromarray(self.pixels).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


@dataclass
class Histogram:
    tag: str
    values: Any  # tensor or array; only its values matter
    step: int = 0


@dataclass
class Scalar:
    tag: str
    value: float
    step: int = 0


@dataclass
class Text:
    tag: str
    text: str
    step: int = 0


@dataclass
class File:
    """A finished file (a DOT graph, its SVG); written once, into the run's main folder."""

    name: str
    data: bytes
    kind: str = "file"


@dataclass
class Graph:
    """A traced TensorBoard GraphDef with its run metadata, as ``add_graph`` writes it."""

    profile: Any  # (GraphDef, RunMetadata step stats)
    tag: str = "graph"


Artifact = Image | Histogram | Scalar | Text | File | Graph
Emit = Callable[[Artifact], None]  # how computations hand artifacts to the sinks
