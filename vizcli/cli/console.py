"""Where the CLI prints: results to stdout, messages and warnings to stderr.

Consoles are created on first use so that ``vizcli --help`` never pays for importing rich.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def stdout() -> Console:
    from rich.console import Console

    console = Console(soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # logs and pipes: never truncate layer names to fit 80 columns
    return console


@functools.cache
def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def show(renderable: Any) -> None:
    """Print a rich renderable (a table, a group) to stdout."""
    stdout().print(renderable)


def info(message: str) -> None:
    """A plain message for the person at the terminal (stderr, so stdout stays data)."""
    stderr().print(message, highlight=False, markup=False)


def warn(message: str) -> None:
    """A prominent one-line warning on stderr."""
    stderr().print(f"[bold yellow]warning:[/bold yellow] {message}", highlight=False)


def error(message: str) -> None:
    text = " ".join(message.split())
    stderr().print(f"[bold red]error:[/bold red] {text}", highlight=False, soft_wrap=True)


def emit_text(text: str, output: Path | None, force: bool) -> None:
    """Print machine-readable text to stdout, or write it atomically to ``output``."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from vizcli.render.files import write_text_atomic

    write_text_atomic(output, text, force)
    info(f"wrote {output}")
