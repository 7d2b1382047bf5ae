"""Rich renderables for the terminal. They build tables; the CLI decides where to print."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.console import Group
from rich.table import Table

from vizcli import units
from vizcli.report.columns import DEFAULT_COLUMNS, HEADERS, TEXT_COLUMNS, Column, cell
from vizcli.report.formats import summary_weights_text, totals_rows

if TYPE_CHECKING:
    from vizcli.actmax import ActmaxReport
    from vizcli.cam.explain import CamReport
    from vizcli.fmaps import FmapLayer
    from vizcli.hist import ParameterRow
    from vizcli.kernels import KernelLayer
    from vizcli.models import ModelEntry
    from vizcli.stats import LayerHealth
    from vizcli.summary import LayerRow, ModelSummary


def summary_renderable(
    summary: ModelSummary, depth: int | None, columns: tuple[Column, ...] = DEFAULT_COLUMNS
) -> Group:
    """The per-layer table (hierarchy indented) and the totals underneath."""
    model = summary.model
    inputs = "; ".join(f"{units.shape(list(i.shape))} {i.dtype}" for i in summary.inputs)
    table = Table(
        title=f"{model['name']} ({model['class']})",
        caption=f"weights: {summary_weights_text(summary.weights)} · input: {inputs}",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("Layer (type)", no_wrap=True)
    for column in columns:
        numeric = column not in TEXT_COLUMNS
        table.add_column(HEADERS[column], justify="right" if numeric else "left")
    visible = summary.visible_layers(depth)
    total_params = max(summary.totals.params, 1)
    for index, row in enumerate(visible):
        expanded = index + 1 < len(visible) and visible[index + 1].depth > row.depth
        cells = [cell(row, column, expanded, total_params) for column in columns]
        table.add_row(_layer_label(row, model["class"]), *cells)
    totals = Table(box=None, show_header=False, padding=(0, 1))
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    for label, value in totals_rows(summary.totals.to_dict()):
        totals.add_row(label, value)
    return Group(table, totals)


def _layer_label(row: LayerRow, model_class: str) -> str:
    if row.depth == 0:
        return f"[bold]{model_class}[/bold]"
    local = row.name.rsplit(".", 1)[-1]
    indent = "│ " * (row.depth - 1)
    return f"[dim]{indent}└─[/dim]{local} [cyan]({row.type})[/cyan]"


def models_renderable(entries: list[ModelEntry], source: str = "torchvision") -> Table:
    table = Table(title=f"{len(entries)} {source} models", box=box.SIMPLE_HEAD)
    table.add_column("Model", style="bold")
    table.add_column("Task")
    table.add_column("Pretrained weights")
    for entry in entries:
        names = [f"[green]{w}[/green]" if w == entry.default_weights else w for w in entry.weights]
        table.add_row(entry.name, entry.task, ", ".join(names) or "[dim]none[/dim]")
    table.caption = "default weights in green; --weights DEFAULT picks them"
    if source == "timm":
        table.caption += "; timm/NAME.TAG picks another tag"
    return table


def layers_renderable(rows: list[LayerRow], model_name: str) -> Table:
    table = Table(title=f"{model_name}: {len(rows)} layers", box=box.SIMPLE_HEAD)
    table.add_column("Name (for --layer)", style="bold", no_wrap=True)
    table.add_column("Type", style="cyan")
    table.add_column("Output shape")
    table.add_column("Params", justify="right")
    for row in rows:
        table.add_row(row.name, row.type, units.shape(row.output_shape),
                      units.count(row.params) if row.params else "--")  # fmt: skip
    return table


def _plain_table(title: str, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for header in headers:
        table.add_column(header, no_wrap=header in ("Layer", "Image"))
    for row in rows:
        table.add_row(*row)
    return table


def kernels_renderable(report: list[KernelLayer]) -> Table:
    rows = [
        (k.name, units.shape(k.weight_shape), k.mode, str(k.filters_shown), str(k.images))
        for k in report
    ]
    return _plain_table("kernels", ("Layer", "Weight shape", "Mode", "Filters", "Images"), rows)


def fmaps_renderable(report: list[FmapLayer]) -> Table:
    rows = [
        (f.image, f.name, units.shape(f.shape), str(f.channels_shown),
         units.shape(list(f.grid)) if f.grid else f"[dim]{f.note}[/dim]")
        for f in report
    ]  # fmt: skip
    headers = ("Image", "Layer", "Output shape", "Channels", "Grid (H×W)")
    return _plain_table("feature maps", headers, rows)


def actmax_renderable(report: ActmaxReport) -> Table:
    """Each target: its value at the start and on the final picture, against the examples."""
    examples = any(r.example_values for r in report.results)
    headers = ["Target", "Start", "Optimised", "Selectivity"]
    if examples:
        headers += ["Examples mean", "Best example", "× best"]
    title = (f"activation maximisation of {report.layer}: {report.options.steps} steps, "
             f"{report.options.parameterization}"
             + ("" if report.options.robust else ", no transforms"))  # fmt: skip
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for header in headers:
        table.add_column(header, justify="left" if header == "Target" else "right")
    for index, result in enumerate(report.results):
        cells = [result.target.name, _num(result.start), _num(result.final),
                 _num(report.selectivity(index))]  # fmt: skip
        if examples:
            best = result.examples[0]
            ratio = result.final / best.value if best.value > 0 else None
            cells += [_num(result.examples_mean), f"{_num(best.value)} ({best.image})",
                      _num(ratio)]  # fmt: skip
        table.add_row(*cells)
    return table


def _num(value: float | None) -> str:
    return "--" if value is None else f"{value:.3g}"


def hist_renderable(rows: list[ParameterRow]) -> Table:
    with_grads = any(r.grads is not None for r in rows)
    table = Table(title=f"{len(rows)} parameter tensors", box=box.SIMPLE_HEAD)
    for header in ("Parameter", "Shape", "Mean", "Std", "Min", "Max", "Norm"):
        left = header in ("Parameter", "Shape")
        table.add_column(header, justify="left" if left else "right", no_wrap=header == "Parameter")
    if with_grads:
        table.add_column("Grad norm", justify="right")
    for row in rows:
        w = row.weights.to_dict()
        cells = [
            row.name,
            units.shape(w["shape"]),
            *(_num(w[k]) for k in ("mean", "std", "min", "max", "norm")),
        ]
        if with_grads:
            cells.append(_num(row.grads.to_dict()["norm"]) if row.grads else "--")
        table.add_row(*cells)
    return table


def stats_renderable(rows: list[LayerHealth]) -> Table:
    table = Table(title="layer health", box=box.SIMPLE_HEAD)
    for header in ("Layer", "Type", "Mean", "Std", "Min", "Max", "Zeros", "Out-grad norm",
                   "Param-grad norm", "Flags"):  # fmt: skip
        table.add_column(
            header, justify="left" if header in ("Layer", "Type", "Flags") else "right"
        )
    for row in rows:
        a = row.activations.to_dict()
        zeros = "--" if a["zero_fraction"] is None else f"{a['zero_fraction']:.0%}"
        flags = "[bold red]" + "; ".join(row.flags) + "[/bold red]" if row.flags else ""
        values = [_num(a[k]) for k in ("mean", "std", "min", "max")]
        grads = [_num(row.output_grad_norm), _num(row.param_grad_norm)]
        table.add_row(row.name, row.type, *values, zeros, *grads, flags)
    return table


def predictions_renderable(report: CamReport) -> Table:
    """Top predictions per image; the explained classes marked."""
    explained = {(r.image, r.target.index) for r in report.results}
    table = Table(title=f"{report.title}: predictions", box=box.SIMPLE_HEAD)
    for header in ("Image", "Rank", "Class", "Index", "Probability", "Explained"):
        table.add_column(
            header, justify="right" if header in ("Rank", "Index", "Probability") else "left"
        )
    for image, predictions in report.predictions.items():
        for row, p in enumerate(predictions):
            mark = "yes" if (image, p.index) in explained else ""
            cells = [str(p.rank), p.name, str(p.index), f"{p.probability:.2%}", mark]
            table.add_row(image if row == 0 else "", *cells)
    return table


def cam_metrics_renderable(report: CamReport) -> Table:
    table = Table(
        title="faithfulness (deletion: lower is better; insertion: higher)", box=box.SIMPLE_HEAD
    )
    for header in ("Image", "Class", "Deletion AUC", "Insertion AUC", "Average drop", "Increase"):
        table.add_column(header, justify="left" if header in ("Image", "Class") else "right")
    for r in report.results:
        m = r.metrics
        aucs = [f"{m['deletion_auc']:.3f}", f"{m['insertion_auc']:.3f}"]
        drop = f"{m['average_drop']:.1f}%"
        table.add_row(r.image, r.target.name, *aucs, drop, "yes" if m["increase"] else "no")
    return table


def sanity_renderable(report: CamReport) -> Table:
    images = len(report.sanity_images)
    table = Table(
        title=f"sanity check: similarity to the original map (mean over {images} image(s))",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("Randomised from the logits through")
    measures = report.sanity_measures()
    headers = {"spearman": "Spearman", "spearman_abs": "|Spearman|", "ssim": "SSIM", "hog": "HOG"}
    for key in measures:
        table.add_column(headers[key], justify="right")
    for row in report.sanity:
        table.add_row(row["randomized_through"], *(f"{row[k]:.3f}" for k in measures))
    return table
