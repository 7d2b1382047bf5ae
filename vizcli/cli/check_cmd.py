"""``vizcli check``: rules about a model, pass or fail, for CI (exit 0, 1; 2 for a bad rule)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from vizcli.cli import common, console
from vizcli.cli.groups import (
    NO_IMAGE_OPTIONS,
    NO_MODEL_OPTIONS,
    ImageOptions,
    ModelOptions,
    with_group,
)
from vizcli.cli.options import ModelArg

RULES = "Rules"


@with_group("source", ModelOptions)
@with_group("prep", ImageOptions)
def check(
    model: ModelArg,
    images: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Images or folders for the rules that run the model on images.", show_default=False
        ),
    ] = None,  # fmt: skip
    max_params: Annotated[
        str | None,
        typer.Option(
            help="At most this many parameters: 25M, 1.2G, 800k.",
            show_default=False,
            rich_help_panel=RULES,
        ),
    ] = None,  # fmt: skip
    max_mult_adds: Annotated[
        str | None,
        typer.Option(
            help="At most this many mult-adds per forward: 4.5G.",
            show_default=False,
            rich_help_panel=RULES,
        ),
    ] = None,  # fmt: skip
    max_activation_memory: Annotated[
        str | None,
        typer.Option(
            help="At most this forward/backward pass size: 500MB, 2GiB.",
            show_default=False,
            rich_help_panel=RULES,
        ),
    ] = None,  # fmt: skip
    input_shape: Annotated[
        list[str] | None,
        typer.Option(
            "--input-shape",
            show_default=False,
            rich_help_panel=RULES,
            help="The model must run on this input: 1,3,224,224; repeatable.",
        ),
    ] = None,  # fmt: skip
    finite: Annotated[
        bool,
        typer.Option(
            "--finite",
            rich_help_panel=RULES,
            help="No NaN/Inf in any layer's output on the images.",
        ),
    ] = False,  # fmt: skip
    max_dead_units: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            rich_help_panel=RULES,
            help="In no activation layer more than this share of channels "
            "that never fire on the images: 0.5 or 50%.",
        ),
    ] = None,  # fmt: skip
    expect: Annotated[
        list[str] | None,
        typer.Option(
            show_default=False,
            rich_help_panel=RULES,
            help="IMAGE=CLASS: the image's top-1 class; repeatable.",
        ),
    ] = None,  # fmt: skip
    cam_sanity: Annotated[
        bool,
        typer.Option(
            "--cam-sanity",
            rich_help_panel=RULES,
            help="Grad-CAM maps of the images must depend on the weights.",
        ),
    ] = False,  # fmt: skip
    baseline: Annotated[
        Path | None,
        typer.Option(
            show_default=False,
            rich_help_panel=RULES,
            help="A 'summary -f json' file to compare against.",
        ),
    ] = None,  # fmt: skip
    max_growth: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            rich_help_panel=RULES,
            help="With --baseline: parameters and mult-adds grow by at "
            "most this much: 5% (default 0%).",
        ),
    ] = None,  # fmt: skip
    config: Annotated[
        Path | None,
        typer.Option(
            show_default=False,
            dir_okay=False,
            help="Read [tool.vizcli.check] from this TOML file instead "
            "of the nearest pyproject.toml.",
        ),
    ] = None,  # fmt: skip
    junit: Annotated[
        Path | None,
        typer.Option(
            show_default=False, dir_okay=False, help="Also write the results as JUnit XML."
        ),
    ] = None,  # fmt: skip
    prep: ImageOptions = NO_IMAGE_OPTIONS,
    source: ModelOptions = NO_MODEL_OPTIONS,
) -> None:
    """Check rules (size, work, memory, input shapes, NaN/Inf, dead units, classes, CAM
    sanity, growth against a baseline): one line each; exit 1 when one fails."""
    from vizcli.check import (
        Rules,
        github_annotations,
        junit_xml,
        parse_bytes,
        parse_count,
        parse_fraction,
        read_config,
        run_checks,
    )
    from vizcli.errors import UsageError

    pairs = []
    for item in expect or []:
        image, sep, name = item.partition("=")
        if not sep or not image.strip() or not name.strip():
            raise UsageError(f"--expect takes IMAGE=CLASS, got {item!r}")
        pairs.append((image.strip(), name.strip()))
    flags = Rules(
        max_params=None if max_params is None else parse_count(max_params, "--max-params"),
        max_mult_adds=None if max_mult_adds is None else parse_count(max_mult_adds,
                                                                     "--max-mult-adds"),
        max_activation_memory=None if max_activation_memory is None
        else parse_bytes(max_activation_memory, "--max-activation-memory"),
        input_shapes=tuple(input_shape or ()),
        images=tuple(str(p) for p in images or ()),
        finite=finite,
        max_dead_units=None if max_dead_units is None else parse_fraction(max_dead_units,
                                                                          "--max-dead-units"),
        expect=tuple(pairs),
        cam_sanity=cam_sanity,
        baseline=None if baseline is None else str(baseline),
        max_growth=None if max_growth is None else parse_fraction(max_growth, "--max-growth"),
    )  # fmt: skip
    configured, where = read_config(config, Path.cwd())
    rules = configured.merged(flags)
    if where:
        console.info(f"rules from {where}")
    loaded = None
    if rules.runs_model:
        loaded = common.load_model(model, source, prep)
    report = run_checks(model, rules, source.weights, source.device, source.offline or None,
                        loaded)  # fmt: skip
    report.config = where
    out = console.stdout()
    for outcome in report.outcomes:
        out.print(outcome.line, markup=False, highlight=False, soft_wrap=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(report):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    if junit is not None:
        from vizcli.output.files import write_text_atomic

        write_text_atomic(junit, junit_xml(report), force=True)
    failed = sum(not o.passed for o in report.outcomes)
    summary = f"{len(report.outcomes) - failed} of {len(report.outcomes)} rules passed"
    if failed:
        console.warn(summary)
        raise typer.Exit(1)
    console.info(summary)
