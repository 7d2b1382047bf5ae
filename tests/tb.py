"""Reading event files back with TensorBoard's own loader (which also verifies checksums)."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read_events(folder: Path) -> EventAccumulator:
    accumulator = EventAccumulator(
        str(folder), size_guidance={"images": 0, "histograms": 0, "scalars": 0, "tensors": 0}
    )
    accumulator.Reload()
    return accumulator
