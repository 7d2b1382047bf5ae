"""Layer selection and hook capture: the right layers, and nothing left behind."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.checks import has_hooks
from tests.conftest import shared
from tests.tiny_models import TinyNet
from vizcli.errors import UsageError
from vizcli.hooks import capture, preserved_state
from vizcli.layers import block_layers, conv_layers, default_feature_layers, select_layers


@pytest.fixture(scope=shared("module"))
def resnet18_meta():
    from torchvision.models import resnet18

    with torch.device("meta"):
        return resnet18()


def test_select_by_name_glob_and_type(resnet18_meta):
    assert list(select_layers(resnet18_meta, ["layer4.1.conv2"])) == ["layer4.1.conv2"]
    globbed = select_layers(resnet18_meta, ["layer*.0.conv1"])
    assert list(globbed) == [f"layer{i}.0.conv1" for i in range(1, 5)]
    convs = select_layers(resnet18_meta, types=["conv2d"])
    assert len(convs) == 20 and all(isinstance(m, nn.Conv2d) for m in convs.values())
    both = select_layers(resnet18_meta, ["layer1.*"], ["BatchNorm2d"])
    assert list(both) == ["layer1.0.bn1", "layer1.0.bn2", "layer1.1.bn1", "layer1.1.bn2"]
    ordered = select_layers(resnet18_meta, ["fc,conv1"])
    assert list(ordered) == ["conv1", "fc"]  # model order, not typing order


@pytest.mark.parametrize(
    ("patterns", "types", "text"),
    [
        (["layer4.1.conv3"], None, "did you mean 'layer4.1.conv2'"),
        (["block*"], None, "matches no layer"),
        (None, ["Conv3d"], "no layer of type 'Conv3d'"),
        (["fc"], ["Conv2d"], "no layer matches both"),
    ],
)
def test_selection_errors(resnet18_meta, patterns, types, text):
    with pytest.raises(UsageError, match=text):
        select_layers(resnet18_meta, patterns, types)


def test_default_feature_layers():
    from torchvision.models import vgg16, vit_b_16

    with torch.device("meta"):
        vgg, vit = vgg16(), vit_b_16()
    assert len(default_feature_layers(vgg)) == 13
    vit_layers = list(default_feature_layers(vit))
    assert vit_layers[0] == "conv_proj" and len(vit_layers) == 13
    assert vit_layers[-1] == "encoder.layers.encoder_layer_11"
    assert list(block_layers(vit))[0] == "encoder.layers.encoder_layer_0"
    assert len(conv_layers(vgg)) == 13


def test_capture_streams_outputs_and_cleans_up():
    model = TinyNet().train()
    model.fc.weight.requires_grad_(False)
    seen = {}
    with capture(model, {"features.0": model.features[0]}, lambda n, t: seen.update({n: t})):
        model.eval()
        out = model(torch.randn(2, 3, 8, 8))
    assert seen["features.0"].shape == (2, 8, 8, 8) and out.shape == (2, 4)
    assert not has_hooks(model)
    assert model.training and all(m.training for m in model.modules())
    assert not model.fc.weight.requires_grad and model.fc.bias.requires_grad


def test_capture_cleans_up_after_an_exception():
    model = TinyNet().train()

    def explode(name, tensor):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), capture(model, {"fc": model.fc}, explode):
        model.eval()
        model(torch.randn(1, 3, 8, 8))
    assert not has_hooks(model) and model.training


def test_preserved_state_restores_requires_grad():
    model = TinyNet()
    with preserved_state(model):
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
    assert all(p.requires_grad for p in model.parameters()) and model.training
