"""Spatial layouts from shapes alone (vizcli.layout), and the CAM layer they lead to for
torchvision and timm CNNs, ViTs (class, distillation and register tokens), Swin and hybrids."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.checks import has_hooks
from tests.conftest import SAMPLES
from vizcli.cam import LayerProbe, get_method
from vizcli.cam.explain import CamOptions, choose_layer, explain
from vizcli.fmaps import FmapOptions, as_maps, feature_maps
from vizcli.layout import Layout, infer_layout

CHELSEA = SAMPLES / "chelsea.png"


@pytest.mark.parametrize(
    ("tokens", "size", "prefix", "grid"),
    [
        (196, (224, 224), 0, (14, 14)),  # mean-pooled, no class token
        (197, (224, 224), 1, (14, 14)),  # ViT-B/16: class token
        (198, (224, 224), 2, (14, 14)),  # distilled DeiT: class + distillation tokens
        (201, (224, 224), 5, (14, 14)),  # 4 registers + class token
        (5 + 37 * 37, (518, 518), 5, (37, 37)),  # DINOv2 reg4, patch 14
        (37, (96, 96), 1, (6, 6)),
        (30, (70, 70), 5, (5, 5)),  # 25 + 5: not read as a 5x6 grid
        (1 + 10 * 14, (160, 224), 1, (10, 14)),  # non-square input
        (1 + 7 * 7, (100, 100), 1, (7, 7)),  # 100 / 14 rounded up (padded patch embedding)
    ],
)
def test_token_grids_and_prefixes_come_from_the_numbers(tokens, size, prefix, grid):
    layout = infer_layout((2, tokens, 64), size, batch=2)
    assert layout == Layout("tokens", grid, prefix)
    x = torch.randn(2, tokens, 64)
    maps = layout.to_maps(x)
    assert maps.shape == (2, 64, *grid)
    assert torch.equal(maps[1, :, 0, 1], x[1, prefix + 1])  # prefix dropped, row-major
    assert torch.equal(maps[0, :, -1, -1], x[0, -1])


@pytest.mark.parametrize(
    ("shape", "size", "expected"),
    [
        ((1, 96, 56, 56), (224, 224), Layout("nchw", (56, 56))),
        ((1, 56, 56, 96), (224, 224), Layout("nhwc", (56, 56))),  # Swin stage, channels-last
        ((1, 7, 7, 768), (224, 224), Layout("nhwc", (7, 7))),
        ((1, 56, 56, 64), (224, 224), Layout("nhwc", (56, 56))),  # MaxViT, 64 channels
        ((1, 7, 7, 7), (224, 224), Layout("nchw", (7, 7))),  # both fit: nchw
        ((1, 5, 7, 768), (160, 224), Layout("nhwc", (5, 7))),
        ((1, 768, 5, 7), (160, 224), Layout("nchw", (5, 7))),
        ((1, 64, 55, 55), (224, 224), Layout("nchw", (55, 55))),  # AlexNet: valid convolutions
        ((1, 256, 4, 6), (160, 224), Layout("nchw", (4, 6))),
        ((1, 2048, 8, 8), (299, 299), Layout("nchw", (8, 8))),  # Inception v3
        ((1, 512, 1, 1), (224, 224), Layout("nchw", (1, 1))),  # spatial, but a single position
    ],
)
def test_four_dimensional_layouts(shape, size, expected):
    layout = infer_layout(shape, size, batch=1)
    assert layout == expected
    maps = layout.to_maps(torch.zeros(shape))
    assert maps.shape[-2:] == expected.grid


@pytest.mark.parametrize(
    ("shape", "size", "batch"),
    [
        ((64, 7, 7, 96), (224, 224), 1),  # Swin window partition: B * windows x 7 x 7 x C
        ((2 * 16, 49, 96), (224, 224), 2),  # the same as tokens
        ((1, 3, 197, 64), (224, 224), 1),  # attention heads: B x heads x N x d
        ((1, 3, 197, 197), (224, 224), 1),  # attention weights
        ((1, 3, 37, 64), (96, 96), 1),
        ((1, 3, 1, 401), (240, 240), 1),  # CrossViT class attention: no 3 x 1 grid
        ((1, 1000), (224, 224), 1),  # logits
        ((1, 197), (224, 224), 1),
        ((1, 4, 448, 448), (224, 224), 1),  # upsampled: no stride >= 1 fits
        ((1, 8, 2, 3, 3), (224, 224), 1),  # 5-D
    ],
)
def test_shapes_that_are_not_spatial(shape, size, batch):
    assert infer_layout(shape, size, batch) is None


def test_loose_reading_and_unknown_input_size():
    assert infer_layout((1, 4, 448, 448), (224, 224), 1, loose=True) == Layout("nchw", (448, 448))
    assert infer_layout((64, 7, 7, 96), (224, 224), 1, loose=True) is None  # batch differs
    assert infer_layout((1, 96, 56, 56)) == Layout("nchw", (56, 56))
    assert infer_layout((1, 197, 768)) == Layout("tokens", (14, 14), 1)  # square grid assumed
    assert infer_layout((1, 201, 768)) == Layout("tokens", (14, 14), 5)


def test_fmaps_read_tokens_and_channels_last_with_the_input_size():
    tokens = torch.randn(1, 141, 32)
    maps = as_maps(tokens, (160, 224), 1)
    assert maps.shape == (32, 10, 14) and torch.equal(maps[:, 0, 0], tokens[0, 1])
    nhwc = torch.randn(1, 5, 7, 16)
    assert torch.equal(as_maps(nhwc, (160, 224), 1), nhwc[0].permute(2, 0, 1))
    assert as_maps(torch.randn(4, 7, 7, 16), (224, 224), 1) is None  # windows
    assert as_maps(torch.randn(1, 2, 1, 7), (32, 224), 1) is None  # one row: not drawn


# Structural choice on small hand-made models: no class or module name is recognised.


class TokenNet(nn.Module):
    """A ViT in miniature: patch embedding, prefix tokens, blocks, final norm, pooled head."""

    def __init__(self, prefix: int = 1, pool: str = "token", dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 8, stride=8)
        self.prefix_tokens = nn.Parameter(torch.randn(1, prefix, dim))
        self.stack = nn.ModuleList(
            nn.ModuleDict({"pre": nn.LayerNorm(dim), "mix": nn.MultiheadAttention(dim, 2)})
            for _ in range(2)
        )
        self.final = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, 5)
        self.prefix, self.pool = prefix, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.prefix_tokens.expand(len(x), -1, -1), x], 1)
        for block in self.stack:
            y = block["pre"](x).transpose(0, 1)
            x = x + block["mix"](y, y, y, need_weights=False)[0].transpose(0, 1)
        x = self.final(x)
        pooled = x[:, 0] if self.pool == "token" else x[:, self.prefix :].mean(1)
        return self.out(pooled)


class ChannelsLastNet(nn.Module):
    """Swin-like: convolution, channels-last norm, permute back, pool, head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 4, stride=4)
        self.to_last = Permute(0, 2, 3, 1)
        self.norm = nn.LayerNorm(12)
        self.to_first = Permute(0, 3, 1, 2)
        self.drop = nn.Dropout(0.5)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.to_first(self.norm(self.to_last(self.stem(x)))))
        return self.out(self.pool(x).flatten(1))


class Permute(nn.Module):
    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


@pytest.mark.parametrize("prefix", [1, 2, 5])
def test_class_token_models_explain_the_last_block_input(prefix):
    torch.manual_seed(0)
    model = TokenNet(prefix).eval()
    image = torch.randn(1, 3, 48, 64)  # a 6x8 grid
    # The final norm's patch tokens never reach the class token; the last block's input does.
    assert choose_layer(model, image, None) == ("stack.1.pre", True)
    maps, _ = get_method("gradcam")(LayerProbe(model, "stack.1.pre"), image, None)
    assert maps.shape == (1, 6, 8) and maps.max() > maps.min()
    assert not has_hooks(model) and not model.training


def test_mean_pooled_tokens_explain_the_final_norm():
    torch.manual_seed(0)
    model = TokenNet(prefix=1, pool="mean").eval()
    assert choose_layer(model, torch.randn(1, 3, 48, 48), None) == ("final", True)


def test_a_zero_classifier_falls_back_to_what_could_reach_it():
    torch.manual_seed(0)
    model = TokenNet(prefix=2).eval()
    nn.init.zeros_(model.out.weight)
    assert choose_layer(model, torch.randn(1, 3, 48, 48), None) == ("stack.1.pre", True)
    assert model.out.weight.eq(0).all()  # the model is left as it was


def test_permutes_and_dropout_after_a_layer_do_not_replace_it():
    torch.manual_seed(0)
    model = ChannelsLastNet().train()
    flags = [p.requires_grad for p in model.parameters()]
    assert choose_layer(model, torch.randn(1, 3, 32, 32), None) == ("norm", True)
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    maps, _ = get_method("gradcam")(LayerProbe(model, "norm"), torch.randn(2, 3, 32, 32), None)
    assert maps.shape == (2, 8, 8)


@pytest.mark.parametrize("make", [lambda: TokenNet(prefix=5), ChannelsLastNet])
def test_every_layer_method_reads_tokens_and_channels_last(make):
    from vizcli.cam.base import METHODS

    torch.manual_seed(0)
    model = make().eval()
    images = torch.randn(2, 3, 48, 64)  # a 6x8 grid for TokenNet, 12x16 for ChannelsLastNet
    layer, _ = choose_layer(model, images, None)
    for name, method in METHODS.items():
        if method.uses_layer:
            maps, logits = get_method(name)(LayerProbe(model, layer), images, None)
            grid = (6, 8) if isinstance(model, TokenNet) else (12, 16)
            assert maps.shape == (2, *grid) and torch.isfinite(maps).all(), name
    assert not has_hooks(model)


def test_when_nothing_reaches_the_output_the_map_before_the_last_is_taken():
    class Cut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second = nn.Conv2d(3, 4, 3, 2), nn.Conv2d(4, 4, 3, 2)
            self.out = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.second(self.first(x)).mean((2, 3)).detach())

    assert choose_layer(Cut(), torch.randn(1, 3, 32, 32), None) == ("first", True)


def test_frozen_models_still_get_their_layer():
    from torchvision.models import resnet18

    model = resnet18(num_classes=4).eval().requires_grad_(False)
    assert choose_layer(model, torch.randn(1, 3, 64, 64), None) == ("layer4", True)
    assert not any(p.requires_grad for p in model.parameters())


# torchvision: the layers the name-based rules used to pick.


def _live_head(model: nn.Module) -> nn.Module:
    """Re-initialise zero-initialised linear layers (torchvision ViT heads) so gradients flow."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.weight.eq(0).all():
            nn.init.normal_(module.weight, std=0.02)
    return model


@pytest.mark.slow
def test_torchvision_vit_and_swin_keep_their_layers():
    from torchvision.models import swin_t, vit_b_16

    torch.manual_seed(0)
    vit = vit_b_16(image_size=112).eval()
    image = torch.randn(1, 3, 112, 112)
    expected = ("encoder.layers.encoder_layer_11.ln_1", True)
    assert choose_layer(vit, image, None) == expected  # zero head: the fallback
    assert choose_layer(_live_head(vit), image, None) == expected
    maps, _ = get_method("gradcam")(LayerProbe(vit, expected[0]), image, None)
    assert maps.shape == (1, 7, 7) and maps.max() > maps.min()
    assert choose_layer(swin_t().eval(), torch.randn(1, 3, 96, 96), None) == ("norm", True)


# timm: random weights, small inputs.

TIMM = [  # name, create_model kwargs, input size, last block (ViT-like) or None
    ("vit_tiny_patch16_224", {"img_size": 96}, 96, "blocks.11"),
    ("deit_tiny_distilled_patch16_224", {"img_size": 96}, 96, "blocks.11"),
    (
        "vit_small_patch14_reg4_dinov2",
        {"img_size": 70, "depth": 4, "num_classes": 9},
        70,
        "blocks.3",
    ),
    ("eva02_tiny_patch14_224", {"img_size": 70, "depth": 4}, 70, "blocks.3"),
    ("beit_base_patch16_224", {"img_size": 96, "depth": 2}, 96, "blocks.1"),
    ("swin_tiny_patch4_window7_224", {"img_size": 112, "depths": (1, 1, 1, 1)}, 112, None),
    ("maxvit_tiny_rw_224", {"img_size": 128}, 128, None),
    ("coatnet_0_rw_224", {"img_size": 128}, 128, None),
    ("mobilevit_xxs", {}, 128, None),
    ("convnext_atto", {}, 96, None),
    ("resnet18", {}, 96, None),
    ("efficientnet_b0", {}, 96, None),
    ("regnetx_002", {}, 96, None),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kwargs", "size", "block"), TIMM, ids=[t[0] for t in TIMM])
def test_timm_models_get_a_spatial_layer_and_a_map(name, kwargs, size, block):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = _live_head(timm.create_model(name, pretrained=False, **kwargs).eval())
    image = torch.randn(1, 3, size, size)
    layer, automatic = choose_layer(model, image, None)
    assert automatic
    if block:  # ViT-like: inside the last block (or its output, when tokens are mean-pooled)
        assert layer == block or layer.startswith(block + "."), layer
    probe = LayerProbe(model, layer)
    maps, logits = get_method("gradcam")(probe, image, None)
    assert min(probe.layout.grid) >= 2 and maps.shape == (1, *probe.layout.grid)
    assert torch.isfinite(maps).all() and maps.max() > maps.min()
    assert not has_hooks(model) and not model.training


@pytest.mark.slow
def test_timm_vit_through_explain_and_fmaps():
    pytest.importorskip("timm")
    from vizcli.models import resolve_model

    loaded = resolve_model("timm/deit_tiny_distilled_patch16_224", weights="none", device="cpu")
    report = explain(loaded, [CHELSEA], CamOptions(), lambda item: None)
    assert report.layer.startswith("blocks.11.") and report.layer_chosen_automatically
    assert report.results[0].map.shape == (14, 14)
    layers = {n: m for n, m in loaded.model.named_modules() if n in ("blocks.11", "head")}
    rows = feature_maps(loaded, [CHELSEA], layers, FmapOptions(), lambda a: None, strict=False)
    assert [(r.name, r.channels_shown, r.grid is not None) for r in rows] == [
        ("blocks.11", 64, True),
        ("head", 0, False),
    ]
