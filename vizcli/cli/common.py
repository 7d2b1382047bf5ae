"""Steps every picture-making command shares: build the model, open the sinks, report."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vizcli.cli import console

if TYPE_CHECKING:
    from vizcli.cli.groups import ImageOptions, LogdirOptions, ModelOptions
    from vizcli.models import LoadedModel
    from vizcli.output.sinks import RunOutputs


def load_model(model: str, source: ModelOptions, image: ImageOptions | None = None) -> LoadedModel:
    """Build a real model with the asked-for preprocessing; say loudly if weights are random."""
    from vizcli.cli.startup import resume_gc
    from vizcli.models import resolve_model

    loaded = resolve_model(
        model, weights=source.weights, device=source.device, offline=source.offline
    )
    resume_gc()
    if image is not None:
        image.apply(loaded)
    if loaded.weights.warning:
        console.warn(loaded.weights.warning)
    if not loaded.weights.pretrained:
        console.warn("RANDOM weights: these pictures show an untrained network")
    else:
        console.info(f"weights: {loaded.weights.describe()}")
    return loaded


def open_outputs(
    command: str, loaded: LoadedModel, inputs: Sequence[Path | str], output: LogdirOptions
) -> RunOutputs:
    from vizcli.output.sinks import RunInfo, RunOutputs

    info = RunInfo(command, loaded.describe(), loaded.weights.to_dict(), [str(i) for i in inputs])
    return RunOutputs(info, run=output.run, **output.folders())


def report_outputs(outputs: RunOutputs) -> None:
    for line in outputs.summary_lines():
        console.info(line)


@contextlib.contextmanager
def progress(total: int, label: str, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal (stderr); silent in pipes, logs and with --quiet."""
    stream = console.stderr()
    if quiet or not stream.is_terminal or total <= 1:
        yield lambda done: None
        return
    from rich.progress import Progress

    with Progress(console=stream, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.advance(task, done)
