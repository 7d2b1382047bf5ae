"""``vizcli diff`` for people: rich tables for the terminal, Markdown for a pull request.

Both are built from the same rows (:func:`totals_rows`, :func:`change_rows`,
:func:`weight_rows`), so the terminal and the pull-request comment always say the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vizcli import units

if TYPE_CHECKING:
    from rich.console import Group

    from vizcli.diff import ModelDiff

TOTAL_NAMES = {
    "params": ("Parameters", units.count),
    "trainable_params": ("Trainable parameters", units.count),
    "mult_adds": ("Mult-adds", units.si),
    "forward_backward_bytes": ("Forward/backward pass size", units.size),
    "params_bytes": ("Parameters size", units.size),
}
FIELD_NAMES = {"type": "type", "output_shape": "output", "params": "params",
               "mult_adds": "mult-adds"}  # fmt: skip


def side_name(about: dict[str, Any]) -> str:
    name = about.get("spec") or about.get("file", "?")
    return f"{name} ({about['weights']})" if about.get("weights") else name


def totals_rows(diff: ModelDiff) -> list[tuple[str, str, str, str]]:
    """(quantity, A, B, change) for each total both sides report."""
    rows = []
    for key, (a, b) in diff.architecture.totals.items():
        label, fmt = TOTAL_NAMES[key]
        if a is None or b is None:
            rows.append((label, "--" if a is None else fmt(a), "--" if b is None else fmt(b), ""))
            continue
        delta = b - a
        sign = "+" if delta > 0 else ("−" if delta < 0 else "±")
        percent = f" ({delta / a:+.1%})" if a else ""
        rows.append((label, fmt(a), fmt(b), f"{sign}{fmt(abs(delta))}{percent}" if delta else "="))
    return rows


def change_rows(diff: ModelDiff) -> list[tuple[str, str, str]]:
    """(what, layer, detail) for every architecture change, in model order of B."""
    arch = diff.architecture
    rows = []
    for item in arch.removed:
        rows.append(("removed", item["name"], _block(item)))
    for item in arch.added:
        rows.append(("added", item["name"], _block(item)))
    for old, new in arch.renamed:
        rows.append(("renamed", new, f"was {old}"))
    for change in arch.changed:
        details = [f"{FIELD_NAMES[k]} {_value(k, a)} → {_value(k, b)}"
                   for k, (a, b) in change.fields.items()]  # fmt: skip
        if change.old_name != change.name:
            details.insert(0, f"was {change.old_name}")
        rows.append(("changed", change.name, "; ".join(details)))
    return rows


def weight_rows(diff: ModelDiff, top: int) -> list[tuple[str, str, str]]:
    """(layer, parameters, relative change) of the layers that moved most."""
    if diff.weights is None:
        return []
    return [(m.layer, units.count(m.params), _relative(m.relative))
            for m in diff.weights.moved_most(top)]  # fmt: skip


def weight_lines(diff: ModelDiff) -> list[str]:
    """Frozen layers, NaN/Inf introduced, tensors on one side only or of another shape."""
    weights = diff.weights
    if weights is None:
        return []
    lines = [f"{len(weights.frozen_layers)} of {len(weights.layers)} layers with parameters are "
             "unchanged (frozen)"]  # fmt: skip
    for tensor in weights.new_nonfinite:
        lines.append(f"NaN/Inf introduced: {tensor.name} ({tensor.new_nonfinite} values)")
    buffers = [t.name for t in weights.tensors if t.kind == "buffer" and not t.frozen]
    if buffers:
        lines.append(f"{len(buffers)} buffers changed (batch-norm statistics and the like)")
    for label, names in (("only in A", weights.only_in_a), ("only in B", weights.only_in_b),
                         ("shapes differ", weights.shape_mismatch)):  # fmt: skip
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            lines.append(f"tensors {label}: {shown}")
    return lines


def diff_renderable(diff: ModelDiff, top: int = 15) -> Group:
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    title = f"{side_name(diff.a)} → {side_name(diff.b)}"
    parts: list[Any] = []
    totals = Table(title=title, box=box.SIMPLE_HEAD)
    for header in ("", "A", "B", "Change"):
        totals.add_column(header, justify="left" if not header else "right")
    for row in totals_rows(diff):
        totals.add_row(*row)
    parts.append(totals)
    changes = change_rows(diff)
    if changes:
        table = Table(title=f"{len(changes)} architecture changes", box=box.SIMPLE_HEAD)
        for header in ("Change", "Layer", "Detail"):
            table.add_column(header)
        for row in changes:
            table.add_row(*row)
        parts.append(table)
    else:
        parts.append(Text("same architecture: every layer matches in type, output shape, "
                          "parameters and mult-adds"))  # fmt: skip
    moved = weight_rows(diff, top)
    if moved:
        table = Table(title="layers whose weights moved most", box=box.SIMPLE_HEAD)
        for header in ("Layer", "Parameters", "Relative change"):
            table.add_column(header, justify="left" if header == "Layer" else "right")
        for row in moved:
            table.add_row(*row)
        parts.append(table)
    parts.extend(Text(line) for line in weight_lines(diff))
    return Group(*parts)


def diff_markdown(diff: ModelDiff, top: int = 15) -> str:
    """The same report as Markdown, to paste as a pull-request comment."""
    lines = [f"### vizcli diff: {side_name(diff.a)} → {side_name(diff.b)}", "",
             "| | A | B | Change |", "| --- | ---: | ---: | ---: |"]  # fmt: skip
    lines += [f"| {' | '.join(row)} |" for row in totals_rows(diff)]
    changes = change_rows(diff)
    lines.append("")
    if changes:
        lines += [f"**{len(changes)} architecture changes**", "", "| Change | Layer | Detail |",
                  "| --- | --- | --- |"]  # fmt: skip
        lines += [f"| {what} | `{layer}` | {_escape(detail)} |" for what, layer, detail in changes]
    else:
        lines.append("Same architecture.")
    moved = weight_rows(diff, top)
    if moved:
        lines += ["", "**Layers whose weights moved most**", "",
                  "| Layer | Parameters | Relative change |", "| --- | ---: | ---: |"]  # fmt: skip
        lines += [f"| `{layer}` | {params} | {change} |" for layer, params, change in moved]
    notes = weight_lines(diff)
    if notes:
        lines += [""] + [f"- {_escape(line)}" for line in notes]
    return "\n".join(lines) + "\n"


def _block(item: dict[str, Any]) -> str:
    inside = f", {item['layers']} layers" if item["layers"] > 1 else ""
    return f"{item['type']}{inside}, {units.count(item['params'])} params"


def _value(key: str, value: Any) -> str:
    if key == "output_shape":
        return units.shape(value) if value else "--"
    if key == "mult_adds":
        return units.si(value)
    if key == "params":
        return units.count(value)
    return str(value)


def _relative(value: float | None) -> str:
    return "from zero" if value is None else f"{value:.3g}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")
