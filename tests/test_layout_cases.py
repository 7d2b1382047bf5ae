"""Layouts read from shapes, case by case with the answers worked out by hand (the stride, the
prefix tokens), plus the small hook helpers: output tensors found in any container, hooks of
every kind detected, and the model-output refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.checks import has_hooks
from vizcli.errors import ModelRunError
from vizcli.hooks import _same_tensor, first_tensor, model_output
from vizcli.layout import Layout, infer_layout

SQUARE = (224, 224)


@pytest.mark.parametrize(
    ("shape", "size", "expected"),
    [
        ((2, 64, 56, 56), SQUARE, Layout("nchw", (56, 56))),  # stride 4
        ((2, 96, 55, 55), SQUARE, Layout("nchw", (55, 55))),  # AlexNet: 56 shaved to 55
        ((2, 2048, 8, 8), (299, 299), Layout("nchw", (8, 8))),  # Inception: 299 / 32 -> 8
        ((2, 256, 1, 1), SQUARE, Layout("nchw", (1, 1))),  # global pooling: stride 224
        ((2, 56, 56, 96), SQUARE, Layout("nhwc", (56, 56))),  # Swin stage, channels last
        ((1, 7, 7, 7), SQUARE, Layout("nchw", (7, 7))),  # both fit: nchw
        ((2, 64, 100, 10), SQUARE, None),  # no single stride gives 100 x 10
        ((2, 64, 28, 40), (224, 320), Layout("nchw", (28, 40))),  # non-square, stride 8
        ((2, 64, 40, 28), (224, 320), None),  # transposed: no
        ((2, 197, 768), SQUARE, Layout("tokens", (14, 14), 1)),  # ViT-B/16
        ((2, 198, 384), SQUARE, Layout("tokens", (14, 14), 2)),  # DeiT distilled
        ((2, 201, 768), SQUARE, Layout("tokens", (14, 14), 5)),  # 4 registers
        ((2, 196, 768), SQUARE, Layout("tokens", (14, 14), 0)),
        ((2, 50, 768), SQUARE, Layout("tokens", (7, 7), 1)),  # ViT-B/32
        ((2, 40, 64), (40, 56), Layout("tokens", (5, 8), 0)),  # the smallest prefix wins
        ((2, 196, 768), (230, 230), Layout("tokens", (14, 14), 0)),  # 230 // 16 = 14
        ((2, 16, 768), (60, 60), Layout("tokens", (4, 4), 0)),  # ceil(60 / 16) = 4 (padded)
        ((2, 17, 8), (16, 16), Layout("tokens", (4, 4), 1)),
        ((2, 99, 8), SQUARE, None),  # 83..99 holds no square (81, 100): no grid of 224
        ((2, 768), SQUARE, None),
        ((2, 3, 4, 5, 6), SQUARE, None),
        ((2, 0, 5, 5), SQUARE, None),
    ],
)
def test_layouts_worked_out_by_hand(shape, size, expected):
    assert infer_layout(shape, size, batch=shape[0]) == expected


def test_batch_unknown_size_and_loose_reading():
    assert infer_layout((3, 64, 56, 56), SQUARE, batch=2) is None  # another batch
    assert infer_layout((3, 64, 56, 56), SQUARE) == Layout("nchw", (56, 56))  # batch unknown
    assert infer_layout((2, 64, 100, 10), None) == Layout("nchw", (100, 10))
    assert infer_layout((2, 197, 8), None) == Layout("tokens", (14, 14), 1)
    assert infer_layout((2, 196, 8), None) == Layout("tokens", (14, 14), 0)
    assert infer_layout((2, 3, 8), None) == Layout("tokens", (1, 1), 2)
    assert infer_layout((2, 64, 100, 10), SQUARE, batch=2, loose=True) == Layout("nchw", (100, 10))
    assert infer_layout((2, 64, 100, 10), SQUARE, batch=3, loose=True) is None
    assert infer_layout((2, 99, 8), SQUARE, loose=True) is None  # loose is for 4-D only


def test_describe_and_to_maps():
    assert Layout("tokens", (14, 14), 1).describe() == "tokens (1 + 14x14)"
    assert Layout("tokens", (2, 3)).describe() == "tokens (2x3)"
    assert Layout("nchw", (7, 5)).describe() == "nchw (7x5)"
    assert Layout("nhwc", (56, 56)).describe() == "nhwc (56x56)"
    tokens = torch.arange(7 * 3.0).view(1, 7, 3)  # 1 prefix + 2x3 grid, 3 channels
    maps = Layout("tokens", (2, 3), 1).to_maps(tokens)
    assert maps.shape == (1, 3, 2, 3)
    assert maps[0, 1].flatten().tolist() == tokens[0, 1:, 1].tolist()  # channel 1, row-major
    nhwc = torch.arange(24.0).view(1, 2, 3, 4)
    assert torch.equal(Layout("nhwc", (2, 3)).to_maps(nhwc), nhwc.permute(0, 3, 1, 2))
    layout = Layout("tokens", (4, 5), 2)
    assert (layout.channel_dim, layout.positions) == (2, 20)
    assert Layout("nhwc").channel_dim == 3 and Layout().channel_dim == 1


def test_first_tensor_in_any_container():
    a, b = torch.zeros(1), torch.ones(2)
    assert first_tensor(a) is a
    assert first_tensor((None, [b, a])) is b
    assert first_tensor({"logits": a, "aux": b}) is a
    assert first_tensor([{"x": None}, ("y", [a])]) is a
    assert first_tensor({"x": 1, "y": "z"}) is None
    assert first_tensor(None) is None and first_tensor([]) is None


def test_model_output_refuses_what_holds_no_scores():
    logits = torch.zeros(2, 5)
    assert model_output({"logits": logits}) is logits
    with pytest.raises(ModelRunError, match="returned NoneType, with no tensor in it") as error:
        model_output(None)
    assert "tuple/dict" in error.value.hint
    with pytest.raises(ModelRunError, match=r"returned a tensor of shape \(5,\)"):
        model_output(torch.zeros(5))
    with pytest.raises(ModelRunError, match="returned dict"):
        model_output({"a": 1})


@pytest.mark.parametrize(
    "register",
    [
        lambda m: m.register_forward_hook(lambda *a: None),
        lambda m: m.register_forward_pre_hook(lambda *a: None),
        lambda m: m.register_full_backward_hook(lambda *a: None),
        lambda m: m.register_full_backward_pre_hook(lambda *a: None),
    ],
)
def test_every_kind_of_hook_is_seen(register):
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
    assert not has_hooks(model)
    handle = register(model[1][0])
    assert has_hooks(model)
    handle.remove()
    assert not has_hooks(model)


def test_same_tensor_means_the_same_view():
    base = torch.arange(12.0).view(3, 4)
    assert _same_tensor(base, base.view(3, 4))
    assert not _same_tensor(base, base.clone())  # other storage
    assert not _same_tensor(base, base.view(4, 3))  # other shape
    assert not _same_tensor(base, base.t().contiguous().t())  # other storage, same shape
    assert not _same_tensor(base[:, :2], base[:, :2].contiguous())
    assert not _same_tensor(base, base.view(torch.int32))  # same bytes, other dtype
    assert not _same_tensor(base[1:], base[:2])  # other offset
    wide = torch.zeros(4, 4)
    assert not _same_tensor(wide[:, :2], wide.view(8, 2)[:4])  # other strides


def test_model_output_hints_word_for_word():
    with pytest.raises(ModelRunError) as error:
        model_output(None)
    assert error.value.hint == (
        "vizcli needs the forward to return the class scores "
        "(a tensor, or a tuple/dict holding one)"
    )
    with pytest.raises(ModelRunError) as error:
        model_output(torch.zeros(3))
    assert error.value.args[0].endswith("vizcli needs batch × classes scores")
