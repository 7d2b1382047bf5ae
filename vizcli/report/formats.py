"""Machine-readable text for CI scripts: JSON, CSV and Markdown, all from plain data."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vizcli import units
from vizcli.report.columns import DEFAULT_COLUMNS, HEADERS, TEXT_COLUMNS, Column, cell

if TYPE_CHECKING:
    from vizcli.summary import ModelSummary

CSV_FIELDS = (
    "name", "type", "depth", "is_leaf", "input_shape", "output_shape", "kernel_size",
    "params", "own_params", "trainable_params", "mult_adds", "own_mult_adds", "output_bytes",
    "saved_bytes", "own_saved_bytes",
)  # fmt: skip


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def summary_csv(summary: ModelSummary, depth: int | None) -> str:
    """One row per layer; shapes as ``1x64x56x56`` so a spreadsheet keeps them as text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in summary.to_dict(depth)["layers"]:
        writer.writerow({k: _csv_cell(row[k]) for k in CSV_FIELDS})
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return units.shape(value).replace("×", "x") if value else ""
    if value is None:
        return ""
    return value


def summary_markdown(
    summary: ModelSummary, depth: int | None, columns: Sequence[Column] = DEFAULT_COLUMNS
) -> str:
    """The table's rows, columns and values as Markdown (expanded rows show their own share)."""
    data = summary.to_dict(depth)
    totals = data["totals"]
    header = ["Layer", "Type", *(HEADERS[c] for c in columns)]
    align = ["---", "---", *("---" if c in TEXT_COLUMNS else "---:" for c in columns)]
    lines = [
        f"## {data['model']['name']} ({data['model']['class']})",
        "",
        f"- weights: {summary_weights_text(data['weights'])}",
        "- input: " + "; ".join(_input_text(i) for i in data["inputs"]),
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
    ]
    visible = summary.visible_layers(depth)
    total_params = max(summary.totals.params, 1)
    for index, row in enumerate(visible):
        expanded = index + 1 < len(visible) and visible[index + 1].depth > row.depth
        indent = "&nbsp;&nbsp;" * max(row.depth - 1, 0)
        name = f"{indent}`{row.name}`" if row.name else f"`{data['model']['class']}`"
        cells = [cell(row, c, expanded, total_params) for c in columns]
        lines.append(f"| {name} | {row.type} | " + " | ".join(cells) + " |")
    lines += ["", "| Total | Value |", "| --- | ---: |"]
    lines += [f"| {label} | {value} |" for label, value in totals_rows(totals)]
    return "\n".join(lines) + "\n"


def _input_text(spec: dict[str, Any]) -> str:
    return f"{units.shape(spec['shape'])} {spec['dtype']}"


def summary_weights_text(weights: dict[str, Any]) -> str:
    return str(weights.get("description") or "none (random init)")


def totals_rows(totals: dict[str, int]) -> list[tuple[str, str]]:
    """The totals block shared by the table and Markdown renderers."""
    return [
        ("Total params", units.count(totals["params"])),
        ("Trainable params", units.count(totals["trainable_params"])),
        ("Non-trainable params", units.count(totals["non_trainable_params"])),
        ("Total mult-adds", units.si(totals["mult_adds"])),
        ("Input size", units.size(totals["input_bytes"])),
        ("Forward/backward pass size", units.size(totals["forward_backward_bytes"])),
        ("Params size", units.size(totals["params_bytes"])),
        ("Estimated total size", units.size(totals["total_bytes"])),
    ] + [
        (label, units.size(totals[key]))
        for key, label in (
            ("saved_bytes", "Saved for backward (measured)"),
            ("peak_bytes", "Peak allocated, forward+backward (measured)"),
        )
        if totals.get(key) is not None
    ]
