"""summary's small parts checked in-process: --input/--dtype parsing and its messages, the
tensors fed to the model, error chains, and the per-row bookkeeping (own shares, subtree sums)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from tests.conftest import TINY
from tests.tiny_models import KeepPositive, PartlyFrozen
from vizcli.errors import InputSpecError, UsageError
from vizcli.summary import (
    INPUT_SEED,
    InputSpec,
    LayerRow,
    _is_meta_problem,
    _root_cause,
    _subtree_sums,
    make_input,
    parse_dtype,
    parse_shape,
    summarize,
)

EXAMPLE = "expected comma-separated positive integers such as 1,3,224,224"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty --input shape ''"),
        ("  ", "empty --input shape '  '"),
        ("1,3,x", "bad --input '1,3,x': 'x' is not an integer"),
        ("1,0,2", "bad --input '1,0,2': 0 is not positive"),
    ],
)
def test_shape_errors_say_what_is_wrong_and_show_an_example(text, message):
    with pytest.raises(InputSpecError) as info:
        parse_shape(text)
    assert info.value.args[0] == message and info.value.hint == EXAMPLE


def test_a_million_is_the_largest_dimension():
    assert parse_shape("1,1000000") == (1, 1_000_000)
    with pytest.raises(InputSpecError) as info:
        parse_shape("1,1000001")
    assert info.value.args[0] == "bad --input '1,1000001': 1000001 is implausibly large"


@pytest.mark.parametrize(
    ("text", "name"),
    [("torch.float16", "float16"), (" TORCH.Half ", "float16"), ("long", "int64"),
     ("double", "float64"), ("torch.bool", "bool")],
)  # fmt: skip
def test_dtype_names_as_torch_writes_them(text, name):
    assert parse_dtype(text) == name


def test_an_unknown_dtype_lists_the_known_ones():
    with pytest.raises(InputSpecError) as info:
        parse_dtype("float8")
    assert info.value.args[0] == "unknown dtype 'float8'"
    assert info.value.hint == (
        "use one of bfloat16, bool, float16, float32, float64, int16, int32, int64, uint8"
    )


def test_inputs_are_seeded_random_floats_zeros_for_integers_and_empty_on_meta():
    cpu = torch.device("cpu")
    expected = torch.randn(2, 3, generator=torch.Generator().manual_seed(INPUT_SEED))
    floats = make_input(InputSpec((2, 3), "float64"), cpu)
    assert floats.dtype == torch.float64 and torch.equal(floats, expected.double())
    assert torch.equal(make_input(InputSpec((2, 3)), cpu), expected)
    ints = make_input(InputSpec((4, 5), "int64"), cpu)
    assert ints.dtype == torch.int64 and ints.shape == (4, 5) and not ints.any()
    meta = make_input(InputSpec((7, 3), "int32"), torch.device("meta"))
    assert meta.is_meta and meta.dtype == torch.int32 and meta.shape == (7, 3)


def test_inputs_too_large_for_the_limit_are_refused_before_allocating(monkeypatch):
    monkeypatch.setenv("VIZCLI_MAX_INPUT_MB", "1")
    with pytest.raises(UsageError, match=r"^--input 1×3×512×512 needs 0\.01 GB"):
        make_input(InputSpec((1, 3, 512, 512), "float64"), torch.device("cpu"))
    make_input(InputSpec((1, 3, 256, 256), "int16"), torch.device("cpu"))  # 0.39 MB: fits
    make_input(InputSpec((1, 3, 4096, 4096)), torch.device("meta"))  # meta allocates nothing


def test_the_root_cause_follows_causes_and_contexts_and_stops_on_cycles():
    root = ValueError("root")
    middle = RuntimeError("middle")
    middle.__context__ = root  # raised while handling root
    top = TypeError("top")
    top.__cause__ = middle  # raise ... from middle
    assert _root_cause(top) is root
    only_context = KeyError("k")
    only_context.__context__ = root
    assert _root_cause(only_context) is root
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert _root_cause(a) in (a, b)  # a cycle ends instead of looping


@pytest.mark.parametrize(
    ("exc", "meta"),
    [
        (NotImplementedError("no kernel"), True),
        (RuntimeError("Tensor.item() cannot be called on META tensors"), True),
        (RuntimeError("Could not guard on data-dependent expression u0 > 3"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
    ],
)
def test_meta_problems_are_told_from_input_mistakes(exc, meta):
    assert _is_meta_problem(exc) is meta


def row(name: str, depth: int, own: int | None) -> LayerRow:
    return LayerRow(name, "M", depth, False, [], [], None, 0, 0, 0, 0, 0, 0, own, own)


def test_subtree_sums_add_each_row_to_its_ancestors_only():
    rows = [row("", 0, 1), row("a", 1, 2), row("a.x", 2, 4), row("b", 1, 8), row("b.y", 2, None)]
    _subtree_sums(rows)
    assert [r.saved_bytes for r in rows] == [15, 6, 4, 8, None]


def test_depth_keeps_rows_at_that_depth():
    result = summarize(f"{TINY}:TinyNet", inputs=["1,3,8,8"])
    assert {r["depth"] for r in result.to_dict(1)["layers"]} == {0, 1}
    assert {r["depth"] for r in result.to_dict(None)["layers"]} == {0, 1, 2}


def test_own_parameters_are_a_rows_own_and_counted_on_its_first_call_only():
    result = summarize(f"{TINY}:PartlyFrozen", inputs=["1,3,8,8"])
    calls: dict[str, list[LayerRow]] = {}
    for layer in result.layers:
        calls.setdefault(layer.name, []).append(layer)
    twice = [rows for rows in calls.values() if len(rows) == 2]
    assert twice, "PartlyFrozen calls one block twice"
    for first, second in twice:
        assert first.params > 0 and (second.params, second.own_params) == (0, 0)
    model = PartlyFrozen()
    for name, module in model.named_modules():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        assert calls[name][0].own_params == own, name


def test_measured_memory_with_an_image_runs_on_the_image_itself(tmp_path):
    """A model whose saved tensors depend on the values (it keeps the positive pixels only):
    the figure must be the image's, not a random input's of the same shape."""
    from vizcli.images import load_tensor
    from vizcli.memory import measure_training_memory

    path = tmp_path / "half.png"
    picture = Image.new("RGB", (64, 64), (250, 250, 250))
    picture.paste((0, 0, 0), (0, 0, 64, 48))  # three quarters dark: few positive values
    picture.save(path)
    spec = f"{TINY}:KeepPositive"
    result = summarize(spec, image=path, size=32, memory="measured", device="cpu")
    tensor = load_tensor(path, result_preprocess(spec, 32))
    expected = measure_training_memory(KeepPositive(), [tensor]).total_saved_bytes
    random = measure_training_memory(KeepPositive(), [torch.randn_like(tensor)]).total_saved_bytes
    assert result.totals.saved_bytes == expected != random


def result_preprocess(spec: str, size: int):
    from vizcli.models import resolve_model

    return resolve_model(spec, device="cpu").preprocess.with_size(size)


def test_parameter_free_models_are_measured_on_the_models_device():
    result = summarize(f"{TINY}:ParamFree", inputs=["1,3,8,8"], memory="measured", device="cpu")
    assert result.totals.params == 0 and result.device == "cpu"
    assert result.totals.saved_bytes == 0  # nothing to train: autograd keeps nothing
    assert result.notes == [
        "measured on cpu: saved-for-backward bytes per layer; the allocator peak is only "
        "known on CUDA"
    ]


def test_a_tensor_saved_by_the_models_own_code_is_charged_to_the_model():
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return torch.sigmoid(self.conv(x)) * x  # sigmoid and mul run in the model's code

    from vizcli.memory import measure_training_memory

    measured = measure_training_memory(Gate(), [torch.randn(2, 3, 4, 4)])
    assert measured.saved_bytes[""] > 0 and set(measured.saved_bytes) == {"", "conv"}


def test_parameters_of_layers_that_never_run_go_to_the_nearest_row_above():
    """torchinfo lists modules that ran; the others' parameters become their nearest listed
    ancestor's own share, so the visible column still adds up to the total."""
    result = summarize(f"{TINY}:NeverRuns", inputs=["1,3,8,8"])
    rows = {r.name: r for r in result.layers}
    assert "aux" not in rows and "block.unused" not in rows
    assert rows[""].own_params == 4 + 10  # its gate and the auxiliary head
    assert rows["block"].own_params == 4 + 20  # its scale and its unused layer
    assert rows["conv"].own_params == rows["conv"].params == 3 * 4 * 9 + 4
    assert result.totals.params == 4 + 112 + 4 + 20 + 20 + 10
    visible = rows[""].own_params + rows["conv"].params + rows["block"].own_params
    assert visible + rows["block.conv"].params == result.totals.params


class RecordingAllocator:
    """Stands in for ``torch.cuda``: records the calls, reports a fixed peak."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def synchronize(self, device) -> None:
        self.calls.append(("synchronize", device))

    def reset_peak_memory_stats(self, device) -> None:
        self.calls.append(("reset", device))

    def max_memory_allocated(self, device) -> int:
        self.calls.append(("peak", device))
        return 12345


class FrozenAndUnused(nn.Module):
    """A frozen stem, a trainable head, and a trainable layer the forward never uses: the
    backward must take the trainable parameters only and accept the unused one."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 4).requires_grad_(False)
        self.head = nn.Linear(4, 2)
        self.unused = nn.Linear(4, 4)
        self.backward_ran = 0

    def _count(self, grad: torch.Tensor) -> None:
        self.backward_ran += 1

    def forward(self, x):
        out = self.head(torch.relu(self.stem(x)))
        if out.requires_grad:
            out.register_hook(self._count)
        return out


def test_with_an_allocator_the_backward_runs_and_its_peak_is_read():
    from vizcli.memory import measure_training_memory

    model, allocator = FrozenAndUnused(), RecordingAllocator()
    x = torch.randn(3, 4)
    measured = measure_training_memory(model, [x], allocator)
    cpu = x.device
    assert measured.peak_bytes == 12345 and model.backward_ran == 1
    assert allocator.calls == [("synchronize", cpu), ("reset", cpu), ("synchronize", cpu),
                               ("peak", cpu)]  # fmt: skip
    assert all(p.grad is None for p in model.parameters())
    plain = measure_training_memory(model, [x])  # no allocator on the CPU: forward only
    assert plain.peak_bytes is None and model.backward_ran == 1
    assert plain.saved_bytes == measured.saved_bytes


def test_an_output_that_needs_no_gradient_skips_the_backward():
    from vizcli.memory import measure_training_memory

    model, allocator = FrozenAndUnused().requires_grad_(False), RecordingAllocator()
    measured = measure_training_memory(model, [torch.randn(3, 4)], allocator)
    assert measured.peak_bytes == 12345 and model.backward_ran == 0


def test_rows_record_shapes_kernels_and_byte_counts():
    """conv 3->4 3x3, BatchNorm, ReLU on 2x3x8x8: every figure of each row on paper."""
    result = summarize(f"{TINY}:ConvBnRelu", inputs=["2,3,8,8"])
    rows = {r.name: r for r in result.layers}
    assert rows["conv"].input_shape == [2, 3, 8, 8] and rows["conv"].kernel_size == [3, 3]
    assert rows["bn"].kernel_size is None and rows["relu"].output_shape == [2, 4, 8, 8]
    assert [r.output_bytes for r in result.layers] == [2 * 4 * 8 * 8 * 4] * 4
    assert rows["conv"].mult_adds == rows["conv"].own_mult_adds == 2 * 4 * 8 * 8 * 3 * 9
    assert result.totals.mult_adds == rows[""].mult_adds == 13824
    # BatchNorm buffers: running mean and var (4 floats each) and an int64 batch counter
    assert result.totals.buffers_bytes == 4 * 4 + 4 * 4 + 8
    assert result.totals.forward_backward_bytes == 2 * 3 * 2048  # leaves only, twice
    for row in result.to_dict()["layers"]:  # counts stay integers in the JSON
        assert all(type(row[k]) is int for k in ("params", "mult_adds", "own_mult_adds"))
    assert type(result.totals.mult_adds) is int


def test_a_model_without_matmuls_or_convolutions_has_no_mult_adds():
    result = summarize(f"{TINY}:ParamFree", inputs=["1,3,8,8"])
    assert result.totals.mult_adds == 0 and all(r.mult_adds == 0 for r in result.layers)


def test_a_block_called_twice_counts_its_work_once_on_its_first_row():
    result = summarize(f"{TINY}:PartlyFrozen", inputs=["1,3,8,8"])
    first, second = [r for r in result.layers if r.name == "block"]
    per_call = 8 * 8 * 8 * 8 * 9  # 8->8 channels, 3x3, on 8x8
    assert (first.mult_adds, second.mult_adds) == (2 * per_call, 0)


def test_the_allocator_peak_reaches_the_totals(monkeypatch):
    """On CUDA the peak comes back from the measurement; stood in for here."""
    from vizcli import memory

    real = memory.measure_training_memory

    def with_peak(model, inputs):
        measured = real(model, inputs)
        return memory.MemoryMeasurement(measured.saved_bytes, measured.total_saved_bytes, 4096)

    monkeypatch.setattr(memory, "measure_training_memory", with_peak)
    result = summarize(f"{TINY}:ConvBnRelu", inputs=["2,3,8,8"], memory="measured", device="cpu")
    assert result.totals.peak_bytes == 4096 and result.totals.saved_bytes == 5696
    assert not any("only known on CUDA" in note for note in result.notes)


def test_a_layer_that_returns_nothing_adds_no_output_bytes():
    result = summarize(f"{TINY}:WithRecorder", inputs=["2,3,8,8"])
    rows = {r.name: r for r in result.layers}
    assert rows["recorder"].output_bytes == 0
    assert result.totals.forward_backward_bytes == 2 * rows["conv"].output_bytes == 2 * 2048


def test_an_unknown_memory_mode_is_named_in_the_message():
    with pytest.raises(InputSpecError) as info:
        summarize(f"{TINY}:ConvBnRelu", inputs=["1,3,8,8"], memory="x")
    assert str(info.value) == "--memory must be estimated or measured, got 'x'"


def test_an_input_the_model_cannot_take_names_the_shapes_and_the_real_error():
    net = f"{TINY}:TinyNet"
    with pytest.raises(InputSpecError) as info:
        summarize(net, inputs=["1,1,8,8"])
    try:
        nn.Conv2d(3, 8, 3, padding=1, device="meta")(torch.zeros(1, 1, 8, 8, device="meta"))
    except RuntimeError as exc:  # the summary runs on the meta device: its kernel's words
        real = str(exc).splitlines()[0]
    hint = "check --input (rank, channels, size) against what the model expects"
    assert str(info.value) == f"TinyNet cannot run on input 1,1,8,8: {real} ({hint})"
    with pytest.raises(InputSpecError) as two:
        summarize(f"{TINY}:TwoInputs", inputs=["1,3,8,8", "1,3"])
    assert str(two.value).startswith("TwoInputs cannot run on input 1,3,8,8 and 1,3: ")


def test_a_real_error_that_mentions_meta_is_not_taken_for_a_meta_problem():
    """Built for real (--memory measured), an error is the model's, whatever its words."""
    with pytest.raises(InputSpecError, match="metadata of this input is not supported"):
        summarize(f"{TINY}:LooksLikeMeta", inputs=["1,3,8,8"], memory="measured")


def test_summarize_prints_nothing_and_sees_every_depth(capsys):
    result = summarize(f"{TINY}:Nested", inputs=["1,3,8,8"])
    assert capsys.readouterr().out == ""  # torchinfo's own table stays unprinted
    conv = result.layers[-1]
    assert conv.name == "body.0.0.0.0.0" and conv.depth == 6 and conv.params == 112
    assert conv.mult_adds == 4 * 3 * 9 * 6 * 6


def test_a_value_dependent_model_is_counted_on_the_image_it_is_given(tmp_path):
    bright, dark = tmp_path / "bright.png", tmp_path / "dark.png"
    Image.new("RGB", (8, 8), "white").save(bright)
    Image.new("RGB", (8, 8), "black").save(dark)
    one, two = 4 * 3 * 9 * 8 * 8, 4 * 4 * 9 * 8 * 8
    spec = f"{TINY}:Brightness"
    lit = summarize(spec, image=bright, size=8)
    assert lit.totals.mult_adds == one + two and lit.device == "cpu"
    assert summarize(spec, image=dark, size=8).totals.mult_adds == one
    assert summarize(spec, inputs=["1,3,8,8"]).totals.mult_adds == one  # random: mean about 0
    assert lit.notes == ["this model cannot run on the meta device; built for real on the CPU"]
    drawn = summarize(
        spec,
        inputs=[
            "1,3,8,8",
        ],
    )
    assert drawn.notes[1] == (
        "its work depends on the input's values (a detector's proposals, say): mult-adds were "
        "counted on one random 1×3×8×8 input (and random weights, when none are loaded) drawn "
        f"with seed {INPUT_SEED}: reproducible, but another input gives another figure"
    )


def test_the_cpu_rebuild_asks_for_the_same_weights():
    result = summarize(f"{TINY}:Brightness", inputs=["1,3,8,8"], weights="auto")
    assert result.device == "cpu" and result.weights["requested"] == "auto"


def test_the_dtype_count_must_match_the_inputs_word_for_word():
    with pytest.raises(InputSpecError) as info:
        summarize(f"{TINY}:TinyNet", inputs=["1,3,8,8"], dtypes=["float32", "int64"])
    assert str(info.value) == "2 --dtype values for 1 inputs (give one --dtype, or one per --input)"


def test_offline_reaches_the_model_source(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("VIZCLI_OFFLINE", raising=False)
    result = summarize("squeezenet1_1", weights="auto", offline=True)
    assert "--offline is set" in result.weights["warning"]


def test_a_parameter_passed_between_modules_does_not_trip_the_summary():
    """PiT hands its class token from module to module; with gradients on, torch's module
    tracker fails on it under torchinfo's no_grad, so the summary turns them off meanwhile."""
    import timm

    result = summarize("timm/pit_ti_224")
    oracle = timm.create_model("pit_ti_224", pretrained=False)
    assert result.totals.params == sum(p.numel() for p in oracle.parameters())


def test_no_weights_by_default():
    result = summarize(f"{TINY}:TinyNet")
    assert result.weights["requested"] == "none" and result.device == "meta"
