"""``vizcli board``: start TensorBoard on a logdir and print where to open it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vizcli.cli import console


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
    from tensorboard import program

    tensorboard = program.TensorBoard()
    tensorboard.configure(
        argv=[
            None,
            "--logdir",
            str(logdir),
            "--host",
            host,
            "--port",
            str(port),
            "--load_fast",
            "false",
        ]
    )
    try:
        url = tensorboard.launch()
    except Exception as exc:  # port taken, address not available...
        raise VizError(f"TensorBoard could not start on {host}:{port}: {exc}") from exc
    console.info(f"TensorBoard for {logdir} at {url} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.info("stopped")
