"""Layer selection on a hand-built model whose every answer is written out here: names,
globs, comma lists, types (case, subclasses), their refusals, and the default layers."""

from __future__ import annotations

import pytest
from torch import nn

from vizcli.errors import UsageError
from vizcli.layers import block_layers, conv_layers, default_feature_layers, select_layers


class MyConv(nn.Conv2d):
    """A user's subclass: ``--type Conv2d`` takes it too."""


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = MyConv(3, 4, 3)
        self.blocks = nn.Sequential(
            *[nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU()) for _ in range(3)]
        )
        self.side = nn.ModuleList([nn.Linear(4, 4), nn.ReLU()])  # mixed types: not a run
        self.pair = nn.ModuleList([nn.Identity(), nn.Identity()])
        self.up = nn.ConvTranspose2d(4, 2, 2)
        self.seq1d = nn.Conv1d(2, 2, 1)
        self.up1d = nn.ConvTranspose1d(2, 2, 1)
        self.vol = nn.Conv3d(1, 1, 1)
        self.head = nn.Linear(4, 2)


NET = Net()


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ([" head , stem "], ["stem", "head"]),  # model order, spaces ignored
        (["head", "stem,head"], ["stem", "head"]),  # repeated: once
        (["blocks.?.0"], ["blocks.0.0", "blocks.1.0", "blocks.2.0"]),
        (["blocks.[02]"], ["blocks.0", "blocks.2"]),
        (["blocks.1*"], ["blocks.1", "blocks.1.0", "blocks.1.1"]),
        (["side.0", "", "pair.*"], ["side.0", "pair.0", "pair.1"]),
    ],
)
def test_names_and_globs(patterns, expected):
    assert list(select_layers(NET, patterns)) == expected


def test_no_patterns_means_every_layer_in_model_order():
    everything = [name for name, _ in NET.named_modules() if name]
    assert list(select_layers(NET)) == everything
    assert list(select_layers(NET, [])) == everything


@pytest.mark.parametrize(
    ("patterns", "message", "hint"),
    [
        (["BLOCKS.*"], "layer pattern 'BLOCKS.*' matches no layer", "see 'vizcli layers MODEL'"),
        (["heads"], "unknown layer 'heads'", "did you mean 'head'"),
        (["zzzzzz"], "unknown layer 'zzzzzz'", "see 'vizcli layers MODEL'"),
        ([" , "], "empty --layer value", "give a layer name such as 'layer4.1.conv2'"),
        ([""], "empty --layer value", "layer4.1.conv2"),
    ],
)
def test_name_refusals(patterns, message, hint):
    with pytest.raises(UsageError) as error:
        select_layers(NET, patterns)
    assert str(error.value).startswith(message)
    assert hint in (error.value.hint or "")


@pytest.mark.parametrize(
    ("types", "patterns", "expected"),
    [
        (["conv2D"], None, ["stem", "blocks.0.0", "blocks.1.0", "blocks.2.0"]),  # subclass too
        (["MyConv"], None, ["stem"]),
        (["linear, ConvTranspose1d"], None, ["side.0", "up1d", "head"]),
        (["Conv1d", "Conv3d"], None, ["seq1d", "vol"]),
        (["ReLU"], ["blocks.1.*", "side.*"], ["blocks.1.1", "side.1"]),
        (["_ConvNd"], ["up*"], ["up", "up1d"]),  # torch's own base classes count
    ],
)
def test_types(types, patterns, expected):
    assert list(select_layers(NET, patterns, types)) == expected


@pytest.mark.parametrize(
    ("types", "patterns", "message", "hint"),
    [
        (["Conv2"], None, "no layer of type 'Conv2' in this model", "did you mean"),
        (["Module"], None, "no layer of type 'Module'", ""),
        (["Embedding"], None, "no layer of type 'Embedding'", "types in this model: "),
        ([" ,"], None, "empty --type value", "Conv2d"),
        (["Linear"], ["blocks.*"], "no layer matches both the names and the types given", "layers"),
    ],
)
def test_type_refusals(types, patterns, message, hint):
    with pytest.raises(UsageError) as error:
        select_layers(NET, patterns, types)
    assert str(error.value).startswith(message)
    assert hint in (error.value.hint or "")


def test_type_hint_lists_the_types_present():
    with pytest.raises(UsageError) as error:
        select_layers(NET, types=["Embedding"])
    listed = error.value.hint.removeprefix("types in this model: ").split(", ")
    assert listed == sorted(listed) and len(listed) == 8
    assert "Module" not in listed and "Conv1d" in listed


def test_convolutions_by_dimension():
    assert list(conv_layers(NET)) == [
        "stem", "blocks.0.0", "blocks.1.0", "blocks.2.0", "up", "seq1d", "up1d", "vol",
    ]  # fmt: skip
    assert list(conv_layers(NET, dims=(1,))) == ["seq1d", "up1d"]
    assert list(conv_layers(NET, dims=(2,))) == [
        "stem", "blocks.0.0", "blocks.1.0", "blocks.2.0", "up",
    ]  # fmt: skip
    assert list(conv_layers(NET, dims=(3,))) == ["vol"]
    assert conv_layers(NET, dims=()) == {}


def test_blocks_are_the_longest_run_of_one_type():
    assert list(block_layers(NET)) == ["blocks.0", "blocks.1", "blocks.2"]
    root = nn.Sequential(nn.Identity(), nn.Identity(), nn.Identity())
    assert list(block_layers(root)) == ["0", "1", "2"]  # the model itself: no prefix
    first = nn.Module()
    first.a = nn.ModuleList([nn.ReLU(), nn.ReLU()])
    first.b = nn.ModuleList([nn.Tanh(), nn.Tanh()])
    assert list(block_layers(first)) == ["a.0", "a.1"]  # a tie keeps the first
    assert block_layers(nn.Linear(2, 2)) == {}


def test_default_layers_every_conv_or_the_blocks():
    assert list(default_feature_layers(NET)) == [
        "stem", "blocks.0.0", "blocks.1.0", "blocks.2.0",
    ]  # fmt: skip
    vit_like = nn.Module()
    vit_like.blocks = nn.Sequential(*[nn.Linear(2, 2) for _ in range(3)])
    vit_like.patch = nn.Conv2d(3, 2, 4)  # one conv only, registered after the blocks
    assert list(default_feature_layers(vit_like)) == ["blocks.0", "blocks.1", "blocks.2", "patch"]
    no_conv = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    assert list(default_feature_layers(no_conv)) == ["0", "1"]


def test_hints_word_for_word():
    cases = [
        (["BLOCKS.*"], None, "see 'vizcli layers MODEL'"),
        (["zzzzzz"], None, "see 'vizcli layers MODEL'"),
        ([" , "], None, "give a layer name such as 'layer4.1.conv2'"),
        (None, [" ,"], "give a class name such as Conv2d"),
        (["head"], ["Conv2d"], "see 'vizcli layers MODEL'"),
    ]
    for patterns, types, hint in cases:
        with pytest.raises(UsageError) as error:
            select_layers(NET, patterns, types)
        assert error.value.hint == hint, (patterns, types)


def test_two_convolutions_are_enough_for_the_default_layers():
    two = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1), nn.Linear(3, 3), nn.Linear(3, 3))
    assert list(default_feature_layers(two)) == ["0", "1"]
    one_d = nn.Sequential(nn.Conv1d(3, 3, 1), nn.Conv1d(3, 3, 1), nn.Conv2d(3, 3, 1))
    assert list(default_feature_layers(one_d)) == ["2"]  # 2-D convolutions only
