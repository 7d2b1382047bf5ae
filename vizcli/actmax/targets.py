"""What an activation maximisation maximises: channels, single units, or class logits.

Every target is read from one tensor, the chosen layer's output (the logits for classes), as
a ``B x T`` matrix: the value of target ``t`` on picture ``b``. Optimising ``T`` targets
together maximises its diagonal; the whole matrix says how selective each picture is.

* channel ``c`` of a map: the mean of ``c`` over all positions (Olah et al.'s "channel");
* neuron ``c``: channel ``c`` at the centre position of the map only;
* a non-spatial output (``B x D``: a linear layer, the logits): feature ``c`` itself.

Maps are found by :func:`vizcli.layout.infer_layout`, so channels-last stages (Swin) and
token outputs (ViT, whose class and register tokens are left out) are read as ``C x h x w``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vizcli.errors import UsageError
from vizcli.layout import Layout, infer_layout

if TYPE_CHECKING:
    import torch

KINDS = ("channel", "neuron", "class")
DEFAULT_COUNT = 8


@dataclass(frozen=True)
class Target:
    kind: str  # one of KINDS
    index: int  # channel, feature or class index
    label: str = ""  # a class name

    @property
    def name(self) -> str:
        """A short name for tables, captions and tags: ``ch 17``, ``unit 17``, ``281 tabby``."""
        if self.kind == "class":
            return f"{self.index} {self.label}".strip()
        return f"{'unit' if self.kind == 'neuron' else 'ch'} {self.index}"


class Reader:
    """Reads every target's value on every picture from one layer's output."""

    def __init__(self, targets: Sequence[Target], layout: Layout | None) -> None:
        import torch

        self.targets = list(targets)
        self.layout = layout
        self.index = torch.tensor([t.index for t in targets])
        self.neuron = targets[0].kind == "neuron" if targets else False

    def maps(self, output: torch.Tensor) -> torch.Tensor | None:
        """``B x T x h x w``: each target's channel, or None for a non-spatial output."""
        if self.layout is None:
            return None
        return self.layout.to_maps(output)[:, self.index.to(output.device)]

    def values(self, output: torch.Tensor) -> torch.Tensor:
        """``B x T``: the value of each target on each picture."""
        maps = self.maps(output)
        if maps is None:
            return output.flatten(1)[:, self.index.to(output.device)]
        if self.neuron:
            h, w = maps.shape[-2:]
            return maps[:, :, h // 2, w // 2]
        return maps.mean((2, 3))


def read_layout(
    output: torch.Tensor, input_size: tuple[int, int], layer: str
) -> tuple[Layout | None, int]:
    """The layout of ``layer``'s output and how many channels (or features) it has."""
    layout = infer_layout(output.shape, input_size, output.shape[0], loose=True)
    if layout is not None and min(layout.grid) >= 1:
        return layout, int(output.shape[layout.channel_dim])
    if output.dim() == 2:
        return None, int(output.shape[1])
    raise UsageError(
        f"layer {layer!r} outputs {tuple(output.shape)}: neither maps nor a feature vector",
        hint="pick a convolutional, block or linear layer; see 'vizcli layers MODEL'",
    )


def unit_targets(
    channels: Sequence[int], count: int, available: int, neuron: bool, layer: str
) -> list[Target]:
    """Targets for ``--channel`` indices, or the first ``count`` channels."""
    chosen = list(channels) or list(range(min(count, available)))
    for index in chosen:
        if not 0 <= index < available:
            raise UsageError(
                f"channel {index} is out of range: layer {layer!r} has {available} channels",
                hint=f"give channels 0..{available - 1}",
            )
    if len(set(chosen)) != len(chosen):
        raise UsageError("--channel lists a channel twice")
    return [Target("neuron" if neuron else "channel", i) for i in chosen]


def parse_channels(texts: Sequence[str]) -> list[int]:
    """``--channel 3,17 --channel 40`` -> [3, 17, 40]; ``a-b`` ranges allowed (inclusive)."""
    found: list[int] = []
    for text in texts:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            low, dash, high = part.partition("-")
            try:
                first = int(low)
                last = int(high) if dash else first
            except ValueError as exc:
                raise UsageError(
                    f"--channel takes indices such as 3,17 or 0-7, got {part!r}"
                ) from exc
            if last < first:
                raise UsageError(f"--channel range {part!r} runs backwards")
            found.extend(range(first, last + 1))
    return found
