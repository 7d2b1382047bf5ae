"""Two versions of a model side by side: architecture (from summaries) and weights.

The architecture diff works on summary documents (the ``vizcli.summary/1`` JSON schema), so a
live model and a saved ``summary -f json`` file are compared the same way. Layers are aligned
by qualified name; the layers left over on each side are then aligned in model order by what
they are (type, parameters, output shape), so a renamed or shifted layer is reported as
renamed, not as one removal and one addition. A container added or removed is reported once,
not with each of its children.

The weights diff compares two state dicts tensor by tensor:
relative change ``||b - a|| / ||a||``, cosine similarity ``a·b / (||a|| ||b||)``, the largest
absolute change, whether the tensor is identical (frozen), and values that became NaN or
infinite. Per layer (the module owning the parameters) the relative change is
``sqrt(Σ||Δ||²) / sqrt(Σ||a||²)`` over its parameters.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

SCHEMA = "vizcli.diff/1"
COMPARED = ("type", "output_shape", "params", "mult_adds")
TOTALS = ("params", "trainable_params", "mult_adds", "forward_backward_bytes", "params_bytes")


@dataclass
class LayerChange:
    """A layer present on both sides whose type, output shape, parameters or work changed."""

    name: str  # the name in B
    old_name: str  # the name in A (differs when the layer was renamed)
    fields: dict[str, list[Any]]  # field -> [value in A, value in B], changed fields only


@dataclass
class ArchitectureDiff:
    changed: list[LayerChange] = field(default_factory=list)
    renamed: list[list[str]] = field(default_factory=list)  # [name in A, name in B], unchanged
    added: list[dict[str, Any]] = field(default_factory=list)  # name, type, params, layers
    removed: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, list[int]] = field(default_factory=dict)  # key -> [A, B]

    @property
    def same(self) -> bool:
        return not (self.changed or self.renamed or self.added or self.removed)


@dataclass
class TensorChange:
    name: str
    kind: str  # "parameter" or "buffer"
    shape: list[int]
    relative: float | None  # ||b - a|| / ||a||; None when a is all zeros and b is not
    cosine: float | None  # None when either side is all zeros
    max_abs: float
    frozen: bool  # identical values
    new_nonfinite: int  # values finite in A and NaN/Inf in B


@dataclass
class LayerMove:
    layer: str
    relative: float | None
    params: int
    frozen: bool


@dataclass
class WeightsDiff:
    tensors: list[TensorChange] = field(default_factory=list)
    layers: list[LayerMove] = field(default_factory=list)  # model order
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

    def moved_most(self, count: int) -> list[LayerMove]:
        moving = [m for m in self.layers if not m.frozen]
        return sorted(moving, key=lambda m: -math.inf if m.relative is None else -m.relative)[
            :count
        ]

    @property
    def frozen_layers(self) -> list[str]:
        return [m.layer for m in self.layers if m.frozen]

    @property
    def new_nonfinite(self) -> list[TensorChange]:
        return [t for t in self.tensors if t.new_nonfinite]


@dataclass
class ModelDiff:
    a: dict[str, Any]  # what each side is: spec or file, weights
    b: dict[str, Any]
    architecture: ArchitectureDiff
    weights: WeightsDiff | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "a": self.a, "b": self.b,
                "architecture": asdict(self.architecture),
                "weights": asdict(self.weights) if self.weights else None}  # fmt: skip


# ------------------------------------------------------------------------- architecture


def architecture_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> ArchitectureDiff:
    """Compare two summary documents (``ModelSummary.to_dict()`` or a saved JSON file).

    Layers pair by name when their types agree, the rest by :func:`_align_leftovers`. When
    either document was saved with a ``--depth``, both are compared down to that depth.
    """
    depths = [d for d in (a.get("depth"), b.get("depth")) if d is not None]
    deepest = min(depths) if depths else None  # a saved summary holds rows to its --depth
    rows_a, rows_b = (_calls([r for r in doc["layers"] if deepest is None or r["depth"] <= deepest])
                      for doc in (a, b))  # fmt: skip
    by_key_b = {r["call"]: r for r in rows_b}
    pairs = [(r, by_key_b[r["call"]]) for r in rows_a
             if r["call"] in by_key_b and by_key_b[r["call"]]["type"] == r["type"]]  # fmt: skip
    paired = {id(x) for pair in pairs for x in pair}
    left_a = [r for r in rows_a if id(r) not in paired]
    left_b = [r for r in rows_b if id(r) not in paired]
    pairs += _align_leftovers(left_a, left_b)
    paired_a = {id(x) for x, _ in pairs}
    paired_b = {id(y) for _, y in pairs}
    result = ArchitectureDiff()
    parents = {r["name"].rpartition(".")[0] for r in rows_b}  # rows with rows inside
    for row_a, row_b in sorted(pairs, key=lambda p: rows_b.index(p[1])):
        changed = {
            k: [row_a.get(k), row_b.get(k)] for k in COMPARED if row_a.get(k) != row_b.get(k)
        }
        renamed = row_a["name"] != row_b["name"]
        innermost = row_b["name"] not in parents  # a leaf, or the deepest row compared
        if changed and (innermost or "type" in changed or renamed):
            result.changed.append(LayerChange(row_b["name"], row_a["name"], changed))
        elif renamed:
            result.renamed.append([row_a["name"], row_b["name"]])
    result.removed = _outermost([r for r in rows_a if id(r) not in paired_a], rows_a)
    result.added = _outermost([r for r in rows_b if id(r) not in paired_b], rows_b)
    totals_a, totals_b = a.get("totals", {}), b.get("totals", {})
    result.totals = {k: [totals_a.get(k), totals_b.get(k)] for k in TOTALS
                     if k in totals_a or k in totals_b}  # fmt: skip
    return result


def _calls(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The layer rows (the model's own left out), each keyed by its name and how many times
    that module ran before: a module called twice (a shared ReLU) has two rows."""
    seen: dict[str, int] = {}
    calls = []
    for row in rows:
        if row["name"]:
            count = seen[row["name"]] = seen.get(row["name"], 0) + 1
            calls.append({**row, "call": (row["name"], count)})
    return calls


def _align_leftovers(
    left_a: Sequence[dict[str, Any]], left_b: Sequence[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pair the layers no name matched, in model order, by their sequence of types: a layer
    inserted into an ``nn.Sequential`` shifts every later index, and the later layers still
    pair with their old selves (reported as renamed, or changed)."""
    matcher = difflib.SequenceMatcher(
        a=[r["type"] for r in left_a], b=[r["type"] for r in left_b], autojunk=False
    )
    pairs = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs += zip(left_a[i1:i2], left_b[j1:j2], strict=True)
    return pairs


def _outermost(rows: list[dict[str, Any]], everything: list[dict[str, Any]]) -> list[dict]:
    """Unpaired layers without those inside another unpaired one, with their sizes."""
    names = {r["name"] for r in rows}
    kept, done = [], set()
    for row in rows:
        parts = row["name"].split(".")
        if row["name"] in done or any(".".join(parts[:i]) in names for i in range(1, len(parts))):
            continue
        done.add(row["name"])
        inside = {r["name"] for r in everything if r["name"].startswith(row["name"] + ".")}
        kept.append({"name": row["name"], "type": row["type"], "params": row["params"],
                     "layers": len(inside) + 1})  # fmt: skip
    return kept


# ------------------------------------------------------------------------------ weights


def weights_diff(
    a: Mapping[str, torch.Tensor],
    b: Mapping[str, torch.Tensor],
    parameters: set[str] | None = None,
) -> WeightsDiff:
    """Compare two state dicts; ``parameters`` names the parameters (the rest are buffers)."""
    import torch

    result = WeightsDiff()
    result.only_in_a = [k for k in a if k not in b]
    result.only_in_b = [k for k in b if k not in a]
    layers: dict[str, list[float]] = {}  # layer -> [Σ||Δ||², Σ||a||², params, all frozen]
    for name, old in a.items():
        if name not in b:
            continue
        new = b[name]
        if old.shape != new.shape:
            result.shape_mismatch.append(name)
            continue
        kind = "parameter" if parameters is None or name in parameters else "buffer"
        change = _tensor_change(name, kind, old.detach().cpu(), new.detach().cpu(), torch)
        result.tensors.append(change)
        if kind == "parameter" and old.is_floating_point():
            layer = name.rpartition(".")[0]
            sums = layers.setdefault(layer, [0.0, 0.0, 0, 1])
            delta = (new.detach().cpu().double() - old.detach().cpu().double()).nan_to_num(
                nan=math.inf
            )
            sums[0] += float(delta.pow(2).sum())
            sums[1] += float(old.detach().cpu().double().pow(2).sum())
            sums[2] += old.numel()
            sums[3] = sums[3] and change.frozen
    for layer, (delta2, base2, count, frozen) in layers.items():
        relative = _ratio(math.sqrt(delta2), math.sqrt(base2))
        result.layers.append(LayerMove(layer, relative, int(count), bool(frozen)))
    return result


def _tensor_change(name: str, kind: str, old: Any, new: Any, torch: Any) -> TensorChange:
    frozen = bool(torch.equal(old, new))
    if not old.is_floating_point():
        differs = (old != new).sum()
        return TensorChange(name, kind, list(old.shape), None if not frozen else 0.0,
                            None, float(differs), frozen, 0)  # fmt: skip
    x, y = old.double().flatten(), new.double().flatten()
    finite = torch.isfinite(x) & torch.isfinite(y)
    delta = (y - x)[finite]
    norm_x, norm_y = float(x[finite].norm()), float(y[finite].norm())
    relative = 0.0 if frozen else _ratio(float(delta.norm()), norm_x)
    cosine = float(x[finite] @ y[finite]) / (norm_x * norm_y) if norm_x and norm_y else None
    max_abs = float(delta.abs().max()) if delta.numel() else 0.0
    new_nonfinite = int((torch.isfinite(x) & ~torch.isfinite(y)).sum())
    return TensorChange(name, kind, list(old.shape), relative, cosine, max_abs, frozen,
                        new_nonfinite)  # fmt: skip


def _ratio(numerator: float, denominator: float) -> float | None:
    if denominator > 0:
        return numerator / denominator
    return 0.0 if numerator == 0 else None


# ----------------------------------------------------------------------------- sources


def compare(
    a: str,
    b: str | None = None,
    weights_a: str | None = None,
    weights_b: str | None = None,
    inputs: Sequence[str] | None = None,
    device: str = "auto",
    offline: bool | None = None,
) -> ModelDiff:
    """Diff two models (specs or saved summary JSON files); weights too when both are given.

    ``b`` defaults to ``a``: one architecture, two checkpoints.
    """
    from vizcli.errors import UsageError

    b = a if b is None else b
    if (weights_a is None) != (weights_b is None):
        raise UsageError(
            "give both --weights-a and --weights-b to compare weights, or neither",
            hint="--weights-a none compares against a freshly initialised model",
        )
    summary_a, about_a = _side(a, inputs, device, offline)
    summary_b, about_b = _side(b, inputs, device, offline)
    result = ModelDiff(about_a, about_b, architecture_diff(summary_a, summary_b))
    if weights_a is not None and weights_b is not None:
        if about_a["kind"] == "summary" or about_b["kind"] == "summary":
            raise UsageError(
                "a saved summary holds no weights; give model specs to compare weights"
            )
        state_a, params = _state(a, weights_a, device, offline)
        state_b, _ = _state(b, weights_b, device, offline)
        about_a["weights"], about_b["weights"] = weights_a, weights_b
        result.weights = weights_diff(state_a, state_b, params)
    return result


def _side(
    spec: str, inputs: Sequence[str] | None, device: str, offline: bool | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A summary document for one side, from a JSON file or by summarising the model."""
    from pathlib import Path

    path = Path(spec)
    if path.suffix.lower() == ".json":
        return read_summary(path), {"kind": "summary", "file": str(path)}
    from vizcli.summary import summarize

    summary = summarize(spec, inputs=inputs, weights="none", device=device, offline=offline)
    return summary.to_dict(), {"kind": "model", "spec": spec}


def read_summary(path: Any) -> dict[str, Any]:
    import json

    from vizcli.errors import UsageError, first_line
    from vizcli.summary import SCHEMA as SUMMARY_SCHEMA

    if not path.is_file():
        raise UsageError(f"summary file not found: {path}", hint="make one with 'vizcli summary "
                         "MODEL -f json -o FILE'")  # fmt: skip
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"cannot read {path} as JSON: {first_line(exc)}") from exc
    if not isinstance(data, dict) or data.get("schema") != SUMMARY_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise UsageError(f"{path} is not a vizcli summary (schema {found!r}, expected "
                         f"{SUMMARY_SCHEMA!r})")  # fmt: skip
    return data


def _state(
    spec: str, weights: str, device: str, offline: bool | None
) -> tuple[dict[str, Any], set[str]]:
    from vizcli.models import resolve_model

    loaded = resolve_model(spec, weights=weights, device=device, offline=offline)
    names = {n for n, _ in loaded.model.named_parameters()}
    return {k: v.detach().cpu() for k, v in loaded.model.state_dict().items()}, names
