"""Machine-readable text for CI scripts: JSON, CSV and Markdown, all from plain data."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from vizcli.render import units

if TYPE_CHECKING:
    from vizcli.summary import ModelSummary

CSV_FIELDS = (
    "name", "type", "depth", "is_leaf", "input_shape", "output_shape", "kernel_size",
    "params", "own_params", "trainable_params", "mult_adds", "own_mult_adds", "output_bytes",
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


def summary_markdown(summary: ModelSummary, depth: int | None) -> str:
    data = summary.to_dict(depth)
    totals = data["totals"]
    lines = [
        f"## {data['model']['name']} ({data['model']['class']})",
        "",
        f"- weights: {summary_weights_text(data['weights'])}",
        "- input: " + "; ".join(_input_text(i) for i in data["inputs"]),
        "",
        "| Layer | Type | Output shape | Params | Mult-adds |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for row in data["layers"]:
        indent = "&nbsp;&nbsp;" * max(row["depth"] - 1, 0)
        name = f"{indent}`{row['name']}`" if row["name"] else f"`{data['model']['class']}`"
        lines.append(
            f"| {name} | {row['type']} | {units.shape(row['output_shape'])} "
            f"| {units.count(row['params'])} | {units.si(row['mult_adds'])} |"
        )
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
    ]
