"""Summary numbers against independent references: torchinfo, torchvision's metadata, arithmetic."""

from __future__ import annotations

import pytest
import torch
import torchinfo
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SAMPLES, TINY, shared
from vizcli.errors import InputSpecError
from vizcli.summary import input_specs, parse_shape, summarize


@pytest.fixture(scope=shared("module"))
def resnet18_summary():
    return summarize("resnet18")


def test_resnet18_matches_the_reference_numbers(resnet18_summary):
    totals = resnet18_summary.totals
    assert resnet18_summary.device == "meta"
    assert totals.params == 11_689_512 == totals.trainable_params
    assert f"{totals.mult_adds / 1e9:.2f}" == "1.81"
    assert totals.params_bytes == 4 * 11_689_512
    assert totals.input_bytes == 4 * 3 * 224 * 224


def test_resnet18_layers_agree_with_torchinfo_on_a_real_model(resnet18_summary):
    """Shapes and conv/linear mult-adds match torchinfo run on a real CPU model."""
    from torchvision.models import resnet18

    reference = torchinfo.summary(resnet18(), input_size=(1, 3, 224, 224), depth=10, verbose=0)
    kinds = ("Conv2d", "Linear")
    theirs = [layer for layer in reference.summary_list if layer.class_name in kinds]
    ours = [row for row in resnet18_summary.layers if row.type in kinds]
    assert len(ours) == len(theirs)
    checked = 0
    for row, layer in zip(ours, theirs, strict=True):
        assert row.name.rsplit(".", 1)[-1] == layer.var_name
        assert row.output_shape == list(layer.output_size)
        assert row.params == layer.num_params
        bias = layer.module.bias.numel() if layer.module.bias is not None else 0
        assert row.mult_adds == layer.macs - bias  # torchinfo counts a bias add as a mult-add
        checked += 1
    assert checked == 21  # 20 convolutions and the classifier


def test_rows_add_up_to_the_totals(resnet18_summary):
    rows = resnet18_summary.layers
    assert sum(r.own_params for r in rows) == resnet18_summary.totals.params
    assert sum(r.own_mult_adds for r in rows) == resnet18_summary.totals.mult_adds
    leaves = [r for r in rows if r.is_leaf]
    assert resnet18_summary.totals.forward_backward_bytes == 2 * sum(r.output_bytes for r in leaves)


def test_resnet50_matches_the_reference_numbers():
    totals = summarize("resnet50").totals
    assert totals.params == 25_557_032
    assert f"{totals.mult_adds / 1e9:.2f}" == "4.09"


def test_vit_counts_attention_matmuls():
    """torchinfo reports 0.173 G for ViT-B/16; torchvision's metadata says 17.56 GFLOPS (MACs)."""
    from torchvision.models import ViT_B_16_Weights

    result = summarize("vit_b_16")
    assert result.totals.params == 86_567_656
    assert abs(result.totals.mult_adds / 17e9 - 1) < 0.05
    assert result.totals.mult_adds / 1e9 == pytest.approx(
        ViT_B_16_Weights.IMAGENET1K_V1.meta["_ops"], rel=0.01
    )
    attention = [r for r in result.layers if r.type == "MultiheadAttention"]
    assert len(attention) == 12 and all(r.own_mult_adds > 0 for r in attention)


def test_vit_h_14_params_size_counts_raw_parameters():
    from torchvision.models import ViT_H_14_Weights

    result = summarize("vit_h_14")  # the published (SWAG, 518 px) architecture
    assert result.device == "meta"
    published = ViT_H_14_Weights.DEFAULT.meta["num_params"]
    assert result.totals.params == published == 633_470_440
    assert result.totals.params_bytes == 4 * published  # torchinfo reports 1,687 MB
    root = result.layers[0]
    assert root.own_params > 0  # the class token lives on the root module


def test_default_input_follows_the_weights():
    assert summarize("inception_v3").inputs[0].shape == (1, 3, 299, 299)


def test_image_as_input_uses_the_preprocessing():
    result = summarize("resnet18", image=SAMPLES / "chelsea.png", size=160)
    assert result.inputs[0].shape == (1, 3, 160, 160)


def test_several_inputs_and_dtypes():
    result = summarize(f"{TINY}:TwoInputs", inputs=["2,3,8,8", "2,5"], dtypes=["float32", "int64"])
    assert [i.dtype for i in result.inputs] == ["float32", "int64"]
    assert result.layers[0].output_shape == [2, 4]
    assert result.totals.params == 3 * 4 * 9 + 4 + 10 * 4


def test_data_dependent_models_fall_back_to_the_cpu():
    result = summarize(f"{TINY}:DataDependent", inputs=["1,3,8,8"])
    assert result.device == "cpu" and result.notes
    assert result.layers[1].output_shape == [1, 4, 6, 6]


@pytest.mark.parametrize("shape", ["1,3,224", "1,1,224,224", "1,3,224,224,2"])
def test_input_the_model_cannot_take_is_a_usage_error(shape):
    with pytest.raises(InputSpecError, match="cannot run on input"):
        summarize("resnet18", inputs=[shape])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1,3,224,224", (1, 3, 224, 224)), ("1x3x32x32", (1, 3, 32, 32)), (" 2, 3 ", (2, 3))],
)
def test_parse_shape(text, expected):
    assert parse_shape(text) == expected


@pytest.mark.parametrize("text", ["", "1,3,x", "0,3,224,224", "-1,3,2,2", "1,,3", "1.5,3", "a"])
def test_parse_shape_rejects(text):
    with pytest.raises(InputSpecError):
        parse_shape(text)


@given(st.text(max_size=30))
def test_any_string_parses_or_gives_a_usage_error(text):
    try:
        shape = parse_shape(text)
    except InputSpecError as exc:
        assert exc.exit_code == 2 and "\n" not in str(exc)
    else:
        assert shape and all(isinstance(d, int) and d > 0 for d in shape)


def test_dtype_count_must_match_inputs():
    with pytest.raises(InputSpecError, match="--dtype"):
        input_specs(["1,3", "1,3", "1,3"], ["float32", "int64"], [])
    with pytest.raises(InputSpecError, match="unknown dtype"):
        input_specs(["1,3"], ["complex999"], [])


def test_json_schema_is_stable(resnet18_summary):
    data = resnet18_summary.to_dict(depth=1)
    assert set(data) == {
        "schema",
        "model",
        "weights",
        "device",
        "inputs",
        "depth",
        "layers",
        "totals",
        "notes",
    }
    assert data["schema"] == "vizcli.summary/1"
    assert set(data["layers"][0]) == {
        "name",
        "type",
        "depth",
        "is_leaf",
        "input_shape",
        "output_shape",
        "kernel_size",
        "params",
        "own_params",
        "trainable_params",
        "mult_adds",
        "own_mult_adds",
        "output_bytes",
        "saved_bytes",  # null unless --memory measured
        "own_saved_bytes",
    }
    assert set(data["totals"]) == {
        "params",
        "trainable_params",
        "non_trainable_params",
        "mult_adds",
        "input_bytes",
        "forward_backward_bytes",
        "saved_bytes",
        "peak_bytes",
        "params_bytes",
        "buffers_bytes",
        "total_bytes",
    }
    assert all(row["depth"] <= 1 for row in data["layers"])
    assert data["weights"]["kind"] == "random" and data["weights"]["pretrained"] is False


def test_frozen_parameters_are_counted_as_non_trainable():
    from vizcli.models import resolve_model
    from vizcli.summary import InputSpec, _assemble, _walk  # noqa: F401

    loaded = resolve_model(f"{TINY}:TinyNet", device="cpu")
    for p in loaded.model.features.parameters():
        p.requires_grad_(False)
    spec = [InputSpec((1, 3, 8, 8))]
    stats = _walk(loaded, spec, None)
    totals = _assemble(loaded, spec, *stats, []).totals
    assert totals.non_trainable_params == 3 * 8 * 9 + 8
    assert totals.trainable_params == 8 * 4 + 4
    assert torch.is_grad_enabled()
