"""Option groups: options several commands share, declared once as a dataclass.

``@with_group("image", ImageOptions)`` adds the dataclass's fields to a command's
signature (Typer reads ``__signature__``) and hands the command one ``ImageOptions``
object instead of six arguments. ``with_group("source", ModelOptions, weights="none")``
changes a default for one command.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from vizcli.errors import UsageError

WEIGHTS_HELP = (
    "none (random init), auto (pretrained if cached or downloadable, else random with a "
    "warning), DEFAULT, a weights name such as IMAGENET1K_V2, or a checkpoint file."
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    """How images become model inputs, and what the classes are called."""

    size: Annotated[
        int | None,
        typer.Option("--size", min=1, show_default=False, rich_help_panel="Preprocessing",
                     help="Input (crop) size; the resize keeps the model's ratio (256/224)."),
    ] = None  # fmt: skip
    crop: Annotated[
        str | None,
        typer.Option("--crop", show_default=False, rich_help_panel="Preprocessing",
                     help="Crop fraction (0.875: resize to size/0.875, centre-crop) or "
                     "'squash' (resize the whole image, no crop)."),
    ] = None  # fmt: skip
    mean: Annotated[
        str | None,
        typer.Option("--mean", show_default=False, rich_help_panel="Preprocessing",
                     help="Normalisation mean: one number or one per channel (0.485,0.456,0.406)."),
    ] = None  # fmt: skip
    std: Annotated[
        str | None,
        typer.Option("--std", show_default=False, rich_help_panel="Preprocessing",
                     help="Normalisation std: one number or one per channel."),
    ] = None  # fmt: skip
    normalize: Annotated[
        bool,
        typer.Option("--normalize/--no-normalize", rich_help_panel="Preprocessing",
                     help="--no-normalize feeds raw [0, 1] pixels (a model trained on them)."),
    ] = True  # fmt: skip
    labels: Annotated[
        str | None,
        typer.Option("--labels", show_default=False, rich_help_panel="Preprocessing",
                     help="Class names: a file (one per line, or JSON), imagenet or imagenet-22k."),
    ] = None  # fmt: skip

    def __post_init__(self) -> None:
        """Spelling mistakes fail here, before any model is built."""
        parse_numbers("--mean", self.mean)
        parse_numbers("--std", self.std)
        if self.crop is not None:
            from vizcli.images import parse_crop

            parse_crop(self.crop)

    def apply(self, loaded: Any) -> None:
        """Override the model's own preprocessing and labels with what was asked for."""
        preprocess = loaded.preprocess
        if self.size is not None:
            preprocess = preprocess.with_size(self.size)
        if self.crop is not None:
            preprocess = preprocess.with_crop(self.crop)
        mean, std = parse_numbers("--mean", self.mean), parse_numbers("--std", self.std)
        if mean or std or not self.normalize:
            preprocess = preprocess.with_normalization(mean, std, self.normalize)
        from vizcli.limits import check_input

        check_input("--size", preprocess.input_shape())
        loaded.preprocess = preprocess
        if self.labels is not None:
            from vizcli.labels import load_labels

            loaded.categories = load_labels(self.labels)


def parse_numbers(option: str, text: str | None) -> list[float] | None:
    if text is None or not text.strip():
        return None
    try:
        return [float(part) for part in text.replace(" ", ",").split(",") if part]
    except ValueError as exc:
        raise UsageError(f"{option} takes numbers separated by commas, got {text!r}") from exc


NO_IMAGE_OPTIONS = ImageOptions()


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """Which weights the model gets, where it runs, and whether the network may be used."""

    weights: Annotated[
        str, typer.Option("--weights", "-w", help=WEIGHTS_HELP, rich_help_panel="Model")
    ] = "auto"
    device: Annotated[
        str,
        typer.Option("--device", rich_help_panel="Model",
                     help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps."),
    ] = "auto"  # fmt: skip
    offline: Annotated[
        bool,
        typer.Option("--offline", envvar="VIZCLI_OFFLINE", rich_help_panel="Model",
                     help="Never touch the network; use only the local caches. Also "
                     "VIZCLI_OFFLINE=1."),
    ] = False  # fmt: skip


@dataclasses.dataclass(frozen=True)
class LogdirOptions:
    """A run folder under a TensorBoard log folder."""

    logdir: Annotated[
        Path | None,
        typer.Option("--logdir", file_okay=False, show_default=False, rich_help_panel="Output",
                     help="Write TensorBoard event files into a new run folder under this "
                     "folder. Default when --out is not given: runs/."),
    ] = None  # fmt: skip
    run: Annotated[
        str | None,
        typer.Option("--run", show_default=False, rich_help_panel="Output",
                     help="Run folder name (default: COMMAND-MODEL, numbered if taken)."),
    ] = None  # fmt: skip

    def folders(self) -> dict[str, Path | None]:
        """Each sink's root by its option name, as ``RunOutputs`` takes them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "run"}


@dataclasses.dataclass(frozen=True)
class OutputOptions(LogdirOptions):
    """PNG files and/or TensorBoard event files, each in a new run folder."""

    out: Annotated[
        Path | None,
        typer.Option("--out", file_okay=False, show_default=False, rich_help_panel="Output",
                     help="Write PNG files into a new run folder under this folder."),
    ] = None  # fmt: skip


def with_group(name: str, group: type, **defaults: Any) -> Callable[[F], F]:
    """Add ``group``'s fields as options of the decorated command, passed as ``name``;
    ``defaults`` replace the group's own for this command."""
    hints = typing.get_type_hints(group, include_extras=True)
    fields = dataclasses.fields(group)
    unknown = set(defaults) - {f.name for f in fields}
    if unknown:
        raise TypeError(f"{group.__name__} has no {sorted(unknown)}")
    default = {f.name: defaults.get(f.name, f.default) for f in fields}
    extra = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default[f.name],
                          annotation=hints[f.name])
        for f in fields
    ]  # fmt: skip

    def decorate(command: F) -> F:
        signature = inspect.signature(command)
        resolved = typing.get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=resolved.get(p.name, p.annotation))
            for p in signature.parameters.values()
            if p.name != name
        ]
        clash = {p.name for p in own} & {p.name for p in extra}
        if clash:
            raise TypeError(f"{command.__name__} already has {sorted(clash)}")

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {f.name: kwargs.pop(f.name, default[f.name]) for f in fields}
            return command(*args, **kwargs, **{name: group(**values)})

        parameters = own + extra
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # Typer must read the new signature, not the original's
        return typing.cast(F, wrapper)

    return decorate


NO_MODEL_OPTIONS = ModelOptions()  # placeholders in signatures; with_group passes the real ones
NO_LOGDIR_OPTIONS = LogdirOptions()
NO_OUTPUT_OPTIONS = OutputOptions()
