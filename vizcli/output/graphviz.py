"""Rendering DOT text with Graphviz's ``dot`` program, when it is installed."""

from __future__ import annotations

import shutil
import subprocess

from vizcli.errors import VizError

INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"
)


def available() -> bool:
    return shutil.which("dot") is not None


def render(dot_text: str, fmt: str) -> bytes:
    """``dot -Tsvg`` (or png) on ``dot_text``; a clear error if Graphviz rejects it."""
    executable = shutil.which("dot")
    if executable is None:
        raise VizError("Graphviz 'dot' is not installed", hint=INSTALL_HINT)
    proc = subprocess.run(
        [executable, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=300
    )
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise VizError(f"Graphviz could not render the graph: {message[0] if message else '?'}")
    return proc.stdout
