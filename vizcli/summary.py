"""Per-layer statistics: torchinfo walks the layers, torch's FLOP counter counts mult-adds.

torchinfo gives the layer hierarchy and shapes. Two of its numbers are replaced: mult-adds
(torchinfo misses attention and functional matmuls; ``torch.utils.flop_counter`` sees
every matmul/conv, including ``scaled_dot_product_attention``) and parameter totals and sizes
(torchinfo drops raw ``nn.Parameter``s held by container modules, e.g. ViT's class token).
Models are built on the meta device when no weights are loaded, so huge models cost no memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli.errors import InputSpecError, first_line

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vizcli.models import LoadedModel

SCHEMA = "vizcli.summary/1"
DTYPES = {
    "float32": "float32", "float": "float32", "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "float64": "float64", "double": "float64", "int64": "int64",
    "long": "int64", "int32": "int32", "int": "int32", "int16": "int16", "uint8": "uint8",
    "bool": "bool",
}  # fmt: skip


@dataclass(frozen=True)
class InputSpec:
    """One forward argument: a shape and a dtype name."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}


@dataclass
class LayerRow:
    """One module call, as torchinfo walked it. Counts include the module's children."""

    name: str  # qualified name from named_modules(); "" for the model itself
    type: str
    depth: int
    is_leaf: bool
    input_shape: list[Any]
    output_shape: list[Any]
    kernel_size: list[int] | None
    params: int
    own_params: int
    trainable_params: int
    mult_adds: int
    own_mult_adds: int
    output_bytes: int
    saved_bytes: int | None = None  # --memory measured: saved for backward, whole subtree
    own_saved_bytes: int | None = None  # ... by this module's own code


@dataclass
class Totals:
    params: int
    trainable_params: int
    non_trainable_params: int
    mult_adds: int
    input_bytes: int
    forward_backward_bytes: int  # every leaf output, kept for backward: x2
    params_bytes: int
    buffers_bytes: int
    saved_bytes: int | None = None  # --memory measured: all tensors saved for backward
    peak_bytes: int | None = None  # --memory measured on CUDA: allocator peak, forward+backward

    @property
    def total_bytes(self) -> int:
        return self.input_bytes + self.forward_backward_bytes + self.params_bytes

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total_bytes": self.total_bytes}


@dataclass
class ModelSummary:
    """Everything ``vizcli summary`` reports; ``to_dict`` is the documented JSON schema."""

    model: dict[str, Any]
    weights: dict[str, Any]
    device: str
    inputs: list[InputSpec]
    layers: list[LayerRow]
    totals: Totals
    notes: list[str] = field(default_factory=list)

    def to_dict(self, depth: int | None = None) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "weights": self.weights,
            "device": self.device,
            "inputs": [i.to_dict() for i in self.inputs],
            "depth": depth,
            "layers": [asdict(r) for r in self.visible_layers(depth)],
            "totals": self.totals.to_dict(),
            "notes": self.notes,
        }

    def visible_layers(self, depth: int | None) -> list[LayerRow]:
        return [r for r in self.layers if depth is None or r.depth <= depth]


# --------------------------------------------------------------------- parsing


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse ``1,3,224,224`` (or ``1x3x224x224``) into a tuple of positive ints."""
    example = "expected comma-separated positive integers such as 1,3,224,224"
    separator = "," if "," in text else r"[x×]"
    parts = [p.strip() for p in re.split(separator, text.strip())] if text.strip() else []
    if not parts:
        raise InputSpecError(f"empty --input shape {text!r}", hint=example)
    dims = []
    for part in parts:
        if not re.fullmatch(r"[+-]?[0-9]+", part):
            raise InputSpecError(f"bad --input {text!r}: {part!r} is not an integer", hint=example)
        value = int(part)
        if value <= 0:
            raise InputSpecError(f"bad --input {text!r}: {value} is not positive", hint=example)
        if value > 1_000_000:
            raise InputSpecError(f"bad --input {text!r}: {value} is implausibly large")
        dims.append(value)
    return tuple(dims)


def parse_dtype(text: str) -> str:
    name = text.strip().lower().removeprefix("torch.")
    if name not in DTYPES:
        raise InputSpecError(
            f"unknown dtype {text!r}", hint="use one of " + ", ".join(sorted(set(DTYPES.values())))
        )
    return DTYPES[name]


def input_specs(
    shapes: Sequence[str] | None, dtypes: Sequence[str] | None, defaults: list[tuple[int, ...]]
) -> list[InputSpec]:
    """Combine ``--input`` and ``--dtype`` values (one dtype may serve every input)."""
    parsed = [parse_shape(s) for s in shapes] if shapes else defaults
    names = [parse_dtype(d) for d in dtypes] if dtypes else ["float32"]
    if len(names) == 1:
        names = names * len(parsed)
    if len(names) != len(parsed):
        raise InputSpecError(
            f"{len(names)} --dtype values for {len(parsed)} inputs",
            hint="give one --dtype, or one per --input",
        )
    return [InputSpec(shape, dtype) for shape, dtype in zip(parsed, names, strict=True)]


# --------------------------------------------------------------------- computing


def summarize(
    spec: str,
    inputs: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    weights: str = "none",
    device: str = "auto",
    offline: bool | None = None,
    image: str | Path | None = None,
    size: int | None = None,
    memory: str = "estimated",
    types: Sequence[str] | None = None,
) -> ModelSummary:
    """Summarise a model: one forward pass, no parameter memory when weights are ``none``.

    ``memory="measured"`` builds the model for real on ``device`` and measures one training
    step (:mod:`vizcli.memory`) besides the estimate. ``types`` keeps only the rows of layers
    of those classes or their subclasses (``--type`` as every command reads it); the totals
    stay the whole model's. Inside :func:`vizcli.models.reusing_models` (``vizcli batch``)
    the same arguments give a copy of the first result.
    """
    import copy

    from vizcli.models import reused_results

    store = reused_results("summary")
    key = repr((spec, inputs, dtypes, weights, device, offline, str(image), size, memory, types))
    if store is not None and key in store:
        return copy.deepcopy(store[key])
    result = _summarize(spec, inputs, dtypes, weights, device, offline, image, size, memory, types)
    if store is not None:
        store[key] = copy.deepcopy(result)
    return result


def _summarize(
    spec: str,
    inputs: Sequence[str] | None,
    dtypes: Sequence[str] | None,
    weights: str,
    device: str,
    offline: bool | None,
    image: str | Path | None,
    size: int | None,
    memory: str,
    types: Sequence[str] | None,
) -> ModelSummary:
    from vizcli.layers import select_layers
    from vizcli.models import resolve_model

    if memory not in ("estimated", "measured"):
        raise InputSpecError(f"--memory must be estimated or measured, got {memory!r}")
    measured = memory == "measured"
    loaded = resolve_model(spec, weights=weights, device=device, offline=offline, meta=not measured)
    kept = set(select_layers(loaded.model, types=types)) if types else None
    if size is not None:
        loaded.preprocess = loaded.preprocess.with_size(size)
    specs = input_specs(inputs, dtypes, loaded.default_input_shapes)
    image_tensor = _image_tensor(image, loaded) if image is not None else None
    if image_tensor is not None:
        specs = [InputSpec(tuple(image_tensor.shape), "float32")]
    notes = []
    try:
        stats = _walk(loaded, specs, image_tensor)
    except _MetaUnsupported:
        notes.append("this model cannot run on the meta device; built for real on the CPU")
        import torch

        with torch.random.fork_rng():  # random weights too are drawn with the seed
            torch.manual_seed(INPUT_SEED)
            loaded = resolve_model(spec, weights=weights, device="cpu", offline=offline)
        stats = _walk(loaded, specs, image_tensor)
        if image_tensor is None:
            shapes = " and ".join("×".join(map(str, s.shape)) for s in specs)
            notes.append(
                "its work depends on the input's values (a detector's proposals, say): "
                f"mult-adds were counted on one random {shapes} input (and random weights, when "
                f"none are loaded) drawn with seed {INPUT_SEED}: reproducible, but another input "
                "gives another figure"
            )
    result = _assemble(loaded, specs, *stats, notes)
    if measured:
        _add_measurement(result, loaded, specs, image_tensor)
    if kept is not None:
        result.layers = [row for row in result.layers if row.name in kept]
    return result


def _add_measurement(
    result: ModelSummary, loaded: LoadedModel, specs: list[InputSpec], image: torch.Tensor | None
) -> None:
    from vizcli.memory import measure_training_memory

    device = loaded.input_device
    tensors = [image.to(device)] if image is not None else [make_input(s, device) for s in specs]
    measurement = measure_training_memory(loaded.model, tensors)
    charged: set[str] = set()
    for row in result.layers:  # a module called twice is charged on its first row
        own = measurement.saved_bytes.get(row.name, 0) if row.name not in charged else 0
        charged.add(row.name)
        row.saved_bytes = row.own_saved_bytes = own
    _subtree_sums(result.layers)
    result.totals.saved_bytes = measurement.total_saved_bytes
    result.totals.peak_bytes = measurement.peak_bytes
    if measurement.peak_bytes is None:
        result.notes.append(
            f"measured on {device.type}: saved-for-backward bytes per layer; the allocator "
            "peak is only known on CUDA"
        )


def _subtree_sums(rows: list[LayerRow]) -> None:
    """Each row's ``saved_bytes`` becomes its subtree's (rows are in depth-first order)."""
    stack: list[LayerRow] = []
    for row in rows:
        while stack and stack[-1].depth >= row.depth:
            stack.pop()
        for parent in stack:
            parent.saved_bytes = (parent.saved_bytes or 0) + (row.own_saved_bytes or 0)
        stack.append(row)


def _image_tensor(image: str | Path, loaded: LoadedModel) -> torch.Tensor:
    from vizcli.images import load_tensor

    return load_tensor(image, loaded.preprocess)


INPUT_SEED = 0


class _MetaUnsupported(Exception):
    """The forward pass needs real data (``.item()``, data-dependent shapes...)."""


def _walk(
    loaded: LoadedModel, specs: list[InputSpec], image: torch.Tensor | None
) -> tuple[Any, dict[str, int], str]:
    import torchinfo

    from vizcli.flops import counting
    from vizcli.hooks import preserved_state

    model = loaded.model
    device = loaded.input_device
    tensors = [image.to(device)] if image is not None else [make_input(s, device) for s in specs]
    # torchinfo runs under no_grad, where torch's module tracker trips over parameters passed
    # as module inputs (PiT, CaiT pass their class token on); nothing needs gradients here.
    try:
        with preserved_state(model):  # requires_grad, flags and buffers come back as they were
            for parameter in model.parameters():
                parameter.requires_grad_(False)
            with counting() as counter:
                stats = torchinfo.summary(
                    model, input_data=tensors, depth=10_000, verbose=0, device=device, mode="eval"
                )
    except Exception as exc:
        root = _root_cause(exc)
        if device.type == "meta" and _is_meta_problem(root):
            raise _MetaUnsupported from exc
        shapes = " and ".join(",".join(map(str, s.shape)) for s in specs)
        raise InputSpecError(
            f"{loaded.name} cannot run on input {shapes}: {first_line(root)}",
            hint="check --input (rank, channels, size) against what the model expects",
        ) from exc
    flops: dict[str, int] = {}
    for key, by_op in counter.get_flop_counts().items():
        if key == "Global":
            continue
        _, _, qualified = key.partition(".")
        flops[qualified] = sum(by_op.values())
    return stats, flops, str(device)


def make_input(spec: InputSpec, device: torch.device) -> torch.Tensor:
    """A tensor for one input spec: random floats, zeros for integer dtypes, empty on meta."""
    import torch

    dtype = getattr(torch, spec.dtype)
    if device.type == "meta":
        return torch.empty(spec.shape, dtype=dtype, device=device)
    from vizcli.limits import check_input

    check_input("--input", spec.shape, dtype.itemsize)
    if dtype.is_floating_point:  # seeded: a data-dependent model's count is reproducible
        generator = torch.Generator().manual_seed(INPUT_SEED)
        return torch.randn(spec.shape, generator=generator).to(device, dtype)
    return torch.zeros(spec.shape, dtype=dtype, device=device)


def _root_cause(exc: BaseException) -> BaseException:
    seen = set()
    while (exc.__cause__ or exc.__context__) is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc


def _is_meta_problem(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, NotImplementedError) or "meta" in text or "data-dependent" in text


def _assemble(
    loaded: LoadedModel,
    specs: list[InputSpec],
    stats: Any,
    flops: dict[str, int],
    device: str,
    notes: list[str],
) -> ModelSummary:
    model = loaded.model
    names = {id(m): n for n, m in model.named_modules()}
    rows: list[LayerRow] = []
    parents: list[int] = []  # index of each row's parent row, -1 for the root
    stack: list[int] = []
    seen_modules: set[int] = set()
    for info in stats.summary_list:
        module = info.module
        first_call = id(module) not in seen_modules
        seen_modules.add(id(module))
        params = _count(module.parameters()) if first_call else 0
        own = _count(module.parameters(recurse=False)) if first_call else 0
        trainable = _count(p for p in module.parameters() if p.requires_grad) if first_call else 0
        name = names[id(module)]  # torchinfo hooks registered modules only
        mult_adds = flops.get(name, 0) // 2 if first_call else 0
        while stack and rows[stack[-1]].depth >= info.depth:
            stack.pop()
        parents.append(stack[-1] if stack else -1)
        stack.append(len(rows))
        rows.append(
            LayerRow(
                name=name,
                type=info.class_name,
                depth=info.depth,
                is_leaf=not any(True for _ in module.children()),
                input_shape=_shape_list(info.input_size),
                output_shape=_shape_list(info.output_size),
                kernel_size=_kernel_list(info.kernel_size),
                params=params,
                own_params=own,
                trainable_params=trainable,
                mult_adds=mult_adds,
                own_mult_adds=mult_adds,
                output_bytes=int(info.output_bytes or 0),
            )
        )
    _attribute_once(rows, parents)
    _charge_modules_that_never_ran(model, rows)
    return ModelSummary(
        model=loaded.describe(),
        weights=loaded.weights.to_dict(),
        device=device,
        inputs=specs,
        layers=rows,
        totals=_totals(model, specs, rows, flops),
        notes=notes,
    )


def _charge_modules_that_never_ran(model: nn.Module, rows: list[LayerRow]) -> None:
    """Parameters of submodules that never ran (inception's aux head in eval mode) have no row:
    they become the own share of their nearest ancestor that has one, so the column adds up."""
    listed = {row.name: row for row in rows}
    for name, module in model.named_modules():
        if name in listed:
            continue
        own = _count(module.parameters(recurse=False))
        if not own:
            continue
        parent = name
        while parent and parent not in listed:
            parent = parent.rpartition(".")[0]
        if parent in listed:
            listed[parent].own_params += own


def _attribute_once(rows: list[LayerRow], parents: list[int]) -> None:
    """Make every row's mult-adds its subtree's, and ``own_*`` what it adds itself.

    The FLOP counter attributes work to the modules that ran; a container that is never
    called (a ``ModuleList`` its parent iterates) gets nothing itself, so its children's work
    also lands in the parent's own share. Summing the children bottom-up gives the container
    its subtree and takes that work out of the parent's own share: each operation counts once.
    """
    children_sum = [0] * len(rows)
    for index in reversed(range(len(rows))):  # children come after their parents
        row = rows[index]
        row.mult_adds = max(row.mult_adds, children_sum[index])
        row.own_mult_adds = row.mult_adds - children_sum[index]
        if parents[index] >= 0:
            children_sum[parents[index]] += row.mult_adds


def _totals(
    model: nn.Module, specs: list[InputSpec], rows: list[LayerRow], flops: dict[str, int]
) -> Totals:
    import torch

    params = list(model.parameters())  # shared parameters are listed once
    total = _count(params)
    trainable = _count(p for p in params if p.requires_grad)
    input_bytes = sum(
        _prod(s.shape) * torch.empty((), dtype=getattr(torch, s.dtype)).element_size()
        for s in specs
    )
    return Totals(
        params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        mult_adds=flops.get("", 0) // 2,  # the root row counts the whole pass
        input_bytes=input_bytes,
        forward_backward_bytes=2 * sum(r.output_bytes for r in rows if r.is_leaf),
        params_bytes=sum(p.numel() * p.element_size() for p in params),
        buffers_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
    )


def _count(params: Any) -> int:
    return sum(p.numel() for p in params)


def _prod(shape: Sequence[int]) -> int:
    result = 1
    for dim in shape:
        result *= dim
    return result


def _kernel_list(value: Any) -> list[int] | None:
    if not value:
        return None
    return [int(v) for v in value] if isinstance(value, list | tuple) else [int(value)]


def _shape_list(value: Any) -> list[int]:
    """torchinfo's sizes are flat (nested only with a ``batch_dim``, which is never given)."""
    return [int(v) for v in value or ()]
