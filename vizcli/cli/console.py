"""Where the CLI prints: results to stdout, messages and warnings to stderr.

Consoles are created on first use so that ``vizcli --help`` never pays for importing rich.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


_results: list[Any] = []  # the real stdout while protect_stdout() is active


@contextlib.contextmanager
def protect_stdout() -> Iterator[None]:
    """Keep stdout for results: anything else printed (a model's ``print``) goes to stderr.
    Nested (each line of ``vizcli batch``), results still go to the real stdout."""
    _results.append(_results[-1] if _results else sys.stdout)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = _results.pop()


def results_only_on_stdout(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command with :func:`protect_stdout` (parsing and --help keep the real stdout)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with protect_stdout():
            return command(*args, **kwargs)

    return run


def _results_stream() -> Any:
    stream = _results[-1] if _results else sys.stdout
    if stream is None:
        from vizcli.errors import VizError

        raise VizError(
            "standard output is closed, so there is nowhere to print the result",
            hint="redirect it to a file, or use --output where the command has it",
        )
    return stream


def stdout() -> Console:
    return _console_for(_results_stream())


@functools.lru_cache(maxsize=4)
def _console_for(stream: Any) -> Console:
    from rich.console import Console

    console = Console(file=stream, soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # logs and pipes: never truncate layer names to fit 80 columns
    return console


@contextlib.contextmanager
def _writing_results() -> Iterator[None]:
    """A full disk or an unwritable stdout is one clear error, not an internal one."""
    from vizcli.errors import VizError

    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise VizError(f"cannot write to standard output: {exc.strerror or exc}") from exc


@functools.cache
def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def show(renderable: Any) -> None:
    """Print a rich renderable (a table, a group) to stdout."""
    console = stdout()
    with _writing_results():
        console.print(renderable)
        console.file.flush()


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
        stream = _results_stream()
        with _writing_results():
            stream.write(text)
            stream.flush()
        return
    from vizcli.output.files import write_text_atomic

    write_text_atomic(output, text, force)
    info(f"wrote {output}")


def route_library_logs() -> None:
    """Show the library's ``vizcli`` log messages (downloads) as info lines on stderr."""
    import logging

    class _ToConsole(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            (warn if record.levelno >= logging.WARNING else info)(record.getMessage())

    logger = logging.getLogger("vizcli")
    if not any(isinstance(h, _ToConsole) for h in logger.handlers):
        logger.addHandler(_ToConsole())
    logger.setLevel(logging.INFO)
    logger.propagate = False
