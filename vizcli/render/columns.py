"""Column choices of the summary table; a plain enum so the CLI can offer it cheaply."""

from __future__ import annotations

from enum import Enum


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
