"""Columns of the summary table: the choices, their headers, and each cell's text.

The rich table and the Markdown table both draw their cells here, so they always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING

from vizcli import units
from vizcli.errors import UsageError, suggest

if TYPE_CHECKING:
    from vizcli.summary import LayerRow


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
    saved = "saved"


DEFAULT_COLUMNS = (Column.output, Column.params, Column.mult_adds)
TEXT_COLUMNS = (Column.input, Column.output, Column.kernel)
HEADERS = {
    Column.input: "Input shape",
    Column.output: "Output shape",
    Column.kernel: "Kernel",
    Column.params: "Params",
    Column.params_percent: "Params %",
    Column.trainable: "Trainable",
    Column.mult_adds: "Mult-adds",
    Column.memory: "Output size",
    Column.saved: "Saved for backward",
}


def cell(row: LayerRow, column: Column, expanded: bool, total_params: int) -> str:
    """Expanded rows show only what their own code adds; their children show the rest."""
    params = row.own_params if expanded else row.params
    mult_adds = row.own_mult_adds if expanded else row.mult_adds
    if column is Column.input:
        return units.shape(row.input_shape)
    if column is Column.output:
        return units.shape(row.output_shape)
    if column is Column.kernel:
        return "×".join(map(str, row.kernel_size)) if row.kernel_size else ""
    if column is Column.params:
        return units.count(params) if params else "--"
    if column is Column.params_percent:
        return f"{100 * params / total_params:.2f}%" if params else "--"
    if column is Column.trainable:
        return "--" if not row.params else ("yes" if row.trainable_params else "no")
    if column is Column.mult_adds:
        return units.si(mult_adds) if mult_adds else "--"
    if column is Column.saved:
        saved = row.own_saved_bytes if expanded else row.saved_bytes
        return units.size(saved) if saved else ("n/a" if saved is None else "--")
    return units.size(row.output_bytes) if row.output_bytes else "--"


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
