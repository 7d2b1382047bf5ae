"""Column choices of the summary table; a plain enum so the CLI can offer it cheaply."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from vizcli.errors import UsageError, suggest


class Column(str, Enum):
    """Optional columns of the summary table (``--columns``)."""

    input = "input"
    output = "output"
    kernel = "kernel"
    params = "params"
    params_percent = "params_percent"
    trainable = "trainable"
    mult_adds = "mult_adds"
    memory = "memory"


DEFAULT_COLUMNS = (Column.output, Column.params, Column.mult_adds)


def parse_columns(values: Sequence[str] | None) -> tuple[Column, ...]:
    """``["output,params", "memory"]`` -> columns, in order; unknown names are usage errors."""
    if not values:
        return DEFAULT_COLUMNS
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    known = {c.value: c for c in Column}
    for name in names:
        if name not in known:
            hint = suggest(name, known) or "choose from " + ", ".join(known)
            raise UsageError(f"unknown column {name!r}", hint=hint)
    return tuple(dict.fromkeys(known[n] for n in names)) or DEFAULT_COLUMNS
