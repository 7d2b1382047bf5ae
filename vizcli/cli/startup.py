"""Start-up cost: no cyclic GC while torch is imported and the model built.

Importing torch and torchvision creates millions of objects; the cyclic GC rescanning them
costs about half a second per run. :func:`gc_paused` holds the GC off for a whole command;
:func:`resume_gc` ends the pause once the model is built, freezing what start-up made so
that later collections never scan it again. Library callers of vizcli never see a change.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Cyclic GC off inside, unless :func:`resume_gc` turned it back on; on again after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            resume_gc()  # enabling alone would scan everything made meanwhile at once


def resume_gc() -> None:
    """End :func:`gc_paused` early: freeze the objects made so far and collect again."""
    if not gc.isenabled():
        gc.freeze()  # imported modules live forever: keep them out of every later scan
        gc.enable()
