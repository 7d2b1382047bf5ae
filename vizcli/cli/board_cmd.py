"""``vizcli board``: start TensorBoard on a logdir and print where to open it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vizcli.cli import console


def _check_host(host: str) -> None:
    import socket

    from vizcli.errors import UsageError

    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"--host {host!r} cannot be resolved: {reason}") from exc


def board(
    logdir: Annotated[
        Path, typer.Argument(help="Folder of runs (vizcli writes to runs/ by default).")
    ] = Path("runs"),
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 shares it on your network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 6006,
) -> None:
    """Serve TensorBoard on LOGDIR until Ctrl-C (loopback only unless --host says otherwise)."""
    import time

    from vizcli.errors import UsageError, VizError

    if not logdir.is_dir():
        raise UsageError(
            f"no such folder: {logdir}", hint="run a vizcli command with --logdir first"
        )
    _check_host(host)
    from tensorboard import program

    from vizcli.output.sinks import unfinished_runs

    stale = unfinished_runs(logdir)
    where = ["--logdir", str(logdir)]
    if stale:  # TensorBoard would list them as runs: name the finished runs one by one
        runs = [p for p in sorted(logdir.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        spec = ",".join(f"{p.name}:{p}" for p in runs)
        where = ["--logdir_spec", spec] if runs else where
        console.warn(
            f"ignoring {len(stale)} unfinished run folder(s) ({stale[0].name}...) left by a run "
            "that was killed; runs started from now on appear after restarting board"
        )
    tensorboard = program.TensorBoard()
    tensorboard.configure(
        argv=[None, *where, "--host", host, "--port", str(port), "--load_fast", "false"]
    )
    try:
        url = tensorboard.launch()
    except (Exception, SystemExit) as exc:  # port taken, address not available...
        raise VizError(f"TensorBoard could not start on {host}:{port}: {exc}") from exc
    console.info(f"TensorBoard for {logdir} at {url} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        from vizcli import interrupts

        interrupts.clear()  # stopping the server is how it ends, not a failure
        console.info("stopped")
