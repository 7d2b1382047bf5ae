"""The `vizcli` entry point: wires the commands; errors become one line and an exit code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from vizcli import __version__, interrupts
from vizcli.cli import console
from vizcli.cli.actmax_cmd import actmax
from vizcli.cli.batch_cmd import batch
from vizcli.cli.board_cmd import board
from vizcli.cli.cam_cmd import cam
from vizcli.cli.check_cmd import check
from vizcli.cli.diff_cmd import diff
from vizcli.cli.fmaps_cmd import fmaps
from vizcli.cli.graph_cmd import graph
from vizcli.cli.hist_cmd import hist
from vizcli.cli.kernels_cmd import kernels
from vizcli.cli.layers_cmd import layers
from vizcli.cli.models_cmd import models
from vizcli.cli.stats_cmd import stats
from vizcli.cli.summary_cmd import summary

app = typer.Typer(
    name="vizcli",
    help="Look inside PyTorch models: summaries, kernels, feature maps, graphs, CAMs and "
    "activation maximisation.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rendering it with rich would double `--help` time
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for command in (
    models,
    summary,
    layers,
    kernels,
    fmaps,
    hist,
    stats,
    graph,
    cam,
    actmax,
    diff,
    check,
    batch,
    board,
):
    app.command(name=command.__name__)(console.results_only_on_stdout(command))


def _version(value: bool) -> None:
    if value:
        print(f"vizcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the full traceback on errors (anywhere on the line)."),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """vizcli: model inspection for PyTorch from the command line."""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every failure ends as one line on stderr and a non-zero exit code."""
    console.route_library_logs()
    args = list(sys.argv[1:] if argv is None else argv)
    sys.exit(run_line(args))


class _Failed(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run_line(args: list[str], where: str = "") -> int:
    """Run one vizcli command line and return its exit code; a failure prints one
    ``error:`` line (prefixed with ``where``, such as ``line 3: ``). ``vizcli batch`` runs
    each of its lines through here, so each behaves exactly as it would alone."""
    from vizcli.cli.startup import gc_paused
    from vizcli.errors import EXIT_RUNTIME, VizError, failure_in_model, first_line

    debug = "--debug" in args or os.environ.get("VIZCLI_DEBUG", "") not in ("", "0")
    line, args = args, [a for a in args if a != "--debug"]
    command = typer.main.get_command(app)
    argv, sys.argv = sys.argv, [sys.argv[0] if sys.argv else "vizcli", *line]  # manifests
    try:
        try:
            with _terminate_like_ctrl_c(), gc_paused():  # until the model is built
                code = command.main(args=args, prog_name="vizcli", standalone_mode=False)
        except typer.TyperException as exc:  # usage errors from the parser
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `vizcli`: show the help
                console.info(exc.format_message())
                return 2
            place = ctx.command_path if ctx is not None else "vizcli"
            raise _Failed(f"{exc.format_message()} (see '{place} --help')", exc.exit_code) from None
        except (typer.Abort, KeyboardInterrupt):
            raise _Failed(*(("terminated", 143) if _terminated else ("interrupted", 130))) from None
        except VizError as exc:
            if debug:
                raise
            raise _Failed(str(exc), exc.exit_code) from None
        except Exception as exc:
            if debug:
                raise
            in_model = failure_in_model(exc)
            if in_model:
                raise _Failed(in_model + " (--debug shows the traceback)", EXIT_RUNTIME) from None
            raise _Failed(
                f"internal error: {type(exc).__name__}: {first_line(exc)} (rerun with --debug "
                "for the traceback, and please report it)",
                EXIT_RUNTIME,
            ) from None
        if code == 130 or interrupts.requested():  # Typer turns Ctrl-C into Exit(130); or a
            # signal's exception was swallowed by a finalizer (the run folder was not committed)
            raise _Failed(*(("terminated", 143) if _terminated else ("interrupted", 130)))
    except _Failed as failed:
        console.error(f"{where}{failed}")
        return failed.code
    finally:
        sys.argv = argv
    return code if isinstance(code, int) else 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (CI runners, ``timeout``): unwinds like Ctrl-C, so every run cleans up."""


_terminated: list[bool] = []


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    import signal
    import threading

    def handler(signum: int, frame: object) -> None:
        _terminated.append(True)
        interrupts.request("terminated")
        raise Terminated

    def ctrl_c(signum: int, frame: object) -> None:
        interrupts.request("interrupted")
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _terminated.clear()
    interrupts.clear()
    previous = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
