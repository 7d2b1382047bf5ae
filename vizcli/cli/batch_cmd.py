"""``vizcli batch``: many vizcli command lines in one process, each model built once."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from vizcli.cli import console

STOPPED = (130, 143)  # interrupted, terminated: the whole batch stops


def batch(
    file: Annotated[
        str,
        typer.Argument(
            help="A file with one vizcli command line per line ('-': standard "
            "input); blank lines and # comments are skipped.",
            show_default=False,
        ),
    ],  # fmt: skip
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first line that fails.")
    ] = False,
) -> None:
    """Run each line as 'vizcli LINE' would, in this one process: torch is imported once and
    each model (spec, weights, device) built once. Exit status: the worst line's."""
    from vizcli.cli.app import run_line
    from vizcli.errors import UsageError
    from vizcli.models import reusing_models

    lines = _read_lines(file)
    commands = []
    for number, text in lines:
        try:
            args = shlex.split(text, comments=True)
        except ValueError as exc:
            raise UsageError(f"line {number}: cannot split {text!r}: {exc}") from exc
        if args and args[0] == "vizcli":
            args = args[1:]
        if args and args[0] == "batch":
            raise UsageError(f"line {number}: a batch cannot run another batch")
        if args:
            commands.append((number, args))
    console.info(f"batch: {len(commands)} command lines")
    worst = 0
    with reusing_models():
        for number, args in commands:
            code = run_line(args, where=f"line {number}: ")
            worst = max(worst, code)
            if code in STOPPED or (code and fail_fast):
                break
    if worst:
        raise typer.Exit(worst)


def _read_lines(file: str) -> list[tuple[int, str]]:
    from vizcli.errors import UsageError, first_line

    if file == "-":
        text = sys.stdin.read()
    else:
        path = Path(file)
        if not path.is_file():
            raise UsageError(f"batch file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {first_line(exc)}") from exc
    return list(enumerate(text.splitlines(), 1))
