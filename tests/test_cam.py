"""CAM methods: parity with pytorch-grad-cam, maps computed by hand, localisation learned by a
tiny CNN, faithfulness checks, and a model left exactly as it was."""

from __future__ import annotations

import contextlib

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from tests.checks import has_hooks
from tests.conftest import shared
from vizcli.cam import METHODS, LayerProbe, get_method
from vizcli.cam.base import upsample
from vizcli.cam.explain import choose_layer, resolve_targets
from vizcli.cam.metrics import cascading_randomization, faithfulness, spearman
from vizcli.draw.grids import normalize
from vizcli.errors import UsageError

SHARED = ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam"]


def _reference(name):
    from pytorch_grad_cam import (
        AblationCAM,
        EigenCAM,
        GradCAM,
        GradCAMPlusPlus,
        HiResCAM,
        LayerCAM,
        ScoreCAM,
        XGradCAM,
    )

    return {
        "gradcam": GradCAM,
        "gradcam++": GradCAMPlusPlus,
        "xgradcam": XGradCAM,
        "hirescam": HiResCAM,
        "layercam": LayerCAM,
        "eigencam": EigenCAM,
        "scorecam": ScoreCAM,
        "ablationcam": AblationCAM,
    }[name]


def _theirs(model, layer, method, batch, classes):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    module = dict(model.named_modules())[layer]
    with _reference(method)(model=model, target_layers=[module]) as cam:
        if hasattr(cam, "batch_size"):
            cam.batch_size = 16
        return cam(input_tensor=batch, targets=[ClassifierOutputTarget(int(c)) for c in classes])


def _ours_like_theirs(maps, size):
    """Their post-processing (min-max, cv2 bilinear resize, min-max) applied to our maps."""
    out = []
    for m in normalize(maps, "each").numpy():
        m = cv2.resize(np.float32(m), size)
        m = m - m.min()
        out.append(m / (1e-7 + m.max()))
    return np.stack(out)


@pytest.fixture(
    scope=shared("module"),
    params=[("resnet18", "layer4"), ("vgg11", "features"), ("densenet121", "features.denseblock4")],
)
def zoo_model(request):
    from torchvision.models import get_model

    torch.manual_seed(0)
    name, layer = request.param
    return name, get_model(name).eval(), layer


SIZE = 224  # the size these networks were designed for: 7 x 7 maps at the target layers


def _assert_parity(maps, theirs, alternatives=()):
    """Every image's map correlates >= 0.999 with the reference after their post-processing
    (for Eigen-CAM, the map or its other-sign alternative)."""
    assert min(maps.shape[-2:]) >= 7  # a few pixels correlate whatever the method
    candidates = [_ours_like_theirs(m, (SIZE, SIZE)) for m in (maps, *alternatives)]
    assert len(theirs) == len(maps)
    for index, ref in enumerate(theirs):
        if ref.max() == 0:
            assert candidates[0][index].max() == 0
            continue
        best = max(np.corrcoef(c[index].ravel(), ref.ravel())[0, 1] for c in candidates)
        assert best >= 0.999, (index, best)


@pytest.mark.parametrize("method", SHARED)
def test_parity_with_pytorch_grad_cam(zoo_model, method):
    name, model, layer = zoo_model
    torch.manual_seed(1)
    count = 1 if name == "densenet121" else 2  # densenet: the slowest by far, one image
    batch, classes = torch.randn(count, 3, SIZE, SIZE), torch.tensor([3, 421][:count])
    theirs = _theirs(model, layer, method, batch, classes)
    maps, _ = get_method(method)(LayerProbe(model, layer), batch, classes)
    alternatives = []
    if method == "eigencam":  # SVD leaves the sign open: we orient it, the reference does not
        alternatives.append(_opposite_eigen_maps(model, layer, batch))
    _assert_parity(maps, theirs, alternatives)
    assert not has_hooks(model)


def _opposite_eigen_maps(model, layer, batch):
    """Eigen-CAM with the other sign of the principal component."""
    probe = LayerProbe(model, layer)
    _, leaf = probe.run(batch, grads=False)
    maps = []
    for sample in probe.maps(leaf).detach():
        matrix = sample.flatten(1).T
        centred = matrix - matrix.mean(0)
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        projection = (centred @ vh[0]).view(sample.shape[1:])
        if torch.dot(projection.flatten(), sample.mean(0).flatten()) >= 0:
            projection = -projection
        maps.append(torch.relu(projection))
    return torch.stack(maps)


@pytest.mark.parametrize("method", ["scorecam", "ablationcam"])
def test_parity_for_perturbation_methods(method):
    """One masked pass per channel: resnet18 cut after layer2 (128 channels, 28 x 28 maps at
    224 px) keeps both libraries to seconds instead of minutes for layer4's 512 channels."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    full = resnet18().eval()
    model = nn.Sequential()
    for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2"):
        model.add_module(name, getattr(full, name))
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flat", nn.Flatten())
    model.add_module("fc", nn.Linear(128, 10))
    model.eval()
    batch, classes = torch.randn(1, 3, SIZE, SIZE), torch.tensor([7])
    theirs = _theirs(model, "layer2", method, batch, classes)
    maps, _ = get_method(method)(LayerProbe(model, "layer2"), batch, classes)
    _assert_parity(maps, theirs)


LITE0_PHOTOS = ("coffee.png", "chelsea.png")


@pytest.fixture(scope=shared("module"))
def lite0_photos():
    """The trained EfficientNet-Lite0 of tests/test_trained.py, two sample photos preprocessed
    as it declares (resize 256, centre crop 224) and each photo's top-1 class."""
    from tests.conftest import ROOT, SAMPLES
    from vizcli.images import load_tensor
    from vizcli.models import resolve_model

    spec = f"{ROOT / 'examples' / 'efficientnet_lite0.py'}:efficientnet_lite0"
    loaded = resolve_model(spec, weights="auto", device="cpu")
    assert loaded.preprocess.crop == (SIZE, SIZE)
    batch = torch.cat([load_tensor(SAMPLES / n, loaded.preprocess) for n in LITE0_PHOTOS])
    with torch.no_grad():
        classes = loaded.model(batch).argmax(1)
    return loaded.model, batch, classes


@pytest.mark.parametrize("layer", ["_bn1", "_blocks.15"])  # the default layer; the last block
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam", "hirescam"])
def test_parity_on_a_trained_network(lite0_photos, method, layer):
    """Random weights give near-uniform gradients; a trained network's maps have structure."""
    model, batch, classes = lite0_photos
    theirs = _theirs(model, layer, method, batch, classes)
    maps, _ = get_method(method)(LayerProbe(model, layer), batch, classes)
    _assert_parity(maps, theirs)
    assert not has_hooks(model) and not model.training


class OneConv(nn.Module):
    """A 1x1 conv, global average pooling and a linear head, all set by the test (seeds' fill_)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight[0].fill_(1.0)  # channel 0 copies the image
            self.conv.weight[1].fill_(-1.0)  # channel 1 is its negative
            self.fc.weight.copy_(torch.tensor([[2.0, 0.5], [-1.0, 3.0]]))

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(1))


def test_maps_computed_by_hand():
    model = OneConv().eval()
    image = torch.tensor([[[[1.0, 2.0], [3.0, -4.0]]]])
    a0, a1 = image[0, 0], -image[0, 0]
    # Grad-CAM, class 0: d logit / d A_k(i,j) = w_k / 4, so alpha = (0.5, 0.125)
    maps, logits = get_method("gradcam")(LayerProbe(model, "conv"), image, torch.tensor([0]))
    assert torch.allclose(maps[0], torch.relu(0.5 * a0 + 0.125 * a1))
    assert torch.allclose(logits, model(image).detach())
    # CAM, class 1: the linear weights themselves
    maps, _ = get_method("cam")(LayerProbe(model, "conv"), image, torch.tensor([1]))
    assert torch.allclose(maps[0], torch.relu(-1.0 * a0 + 3.0 * a1))
    # HiResCAM: element-wise gradient times activation, summed
    maps, _ = get_method("hirescam")(LayerProbe(model, "conv"), image, torch.tensor([1]))
    assert torch.allclose(maps[0], torch.relu(-0.25 * a0 + 0.75 * a1))
    # vanilla saliency: |d logit / d x| = |sum_k w_k c_k| / 4 everywhere
    maps, _ = get_method("saliency")(LayerProbe(model, None), image, torch.tensor([0]))
    assert torch.allclose(maps[0], torch.full((2, 2), (2.0 - 0.5) / 4))


# --------------------------------------------------------------------- a model that learned


def _squares(count, generator, with_square=True):
    images = torch.rand(count, 3, 32, 32, generator=generator) * 0.5
    boxes = []
    for i in range(count):
        y, x = torch.randint(0, 26, (2,), generator=generator).tolist()
        if with_square:
            images[i, :, y : y + 6, x : x + 6] = 1.0
        boxes.append((y, x))
    return images, boxes


class SquareNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture(scope=shared("session"))
def square_net():
    """Trained in seconds: is there a bright square on the noise (class 1) or not (class 0)?"""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = SquareNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        positives, _ = _squares(32, generator)
        negatives, _ = _squares(32, generator, with_square=False)
        batch = torch.cat([positives, negatives])
        labels = torch.cat([torch.ones(32), torch.zeros(32)]).long()
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(batch), labels).backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    test, boxes = _squares(60, torch.Generator().manual_seed(123))
    with torch.no_grad():
        assert (model(test).argmax(1) == 1).float().mean() > 0.95
    return model, test, boxes


@pytest.mark.parametrize("method", ["gradcam", "scorecam", "layercam"])
def test_trained_model_is_localised(square_net, method):
    model, images, boxes = square_net
    maps, _ = get_method(method)(LayerProbe(model, "features"), images, torch.ones(60).long())
    big = upsample(normalize(maps, "each"), (32, 32))
    hits = 0
    for heat, (y, x) in zip(big, boxes, strict=True):
        py, px = divmod(int(heat.argmax()), 32)
        hits += y - 1 <= py <= y + 6 and x - 1 <= px <= x + 6
    assert hits / len(boxes) >= 0.9
    assert not has_hooks(model)


def test_faithfulness_prefers_the_real_map(square_net):
    model, images, _ = square_net
    image = images[:1]
    maps, _ = get_method("gradcam")(LayerProbe(model, "features"), image, torch.tensor([1]))
    good = upsample(normalize(maps, "each"), (32, 32))[0]
    real = faithfulness(model, image, 1, good)
    inverted = faithfulness(model, image, 1, 1 - good)
    assert real["deletion_auc"] < inverted["deletion_auc"]
    assert real["insertion_auc"] > inverted["insertion_auc"]


def test_sanity_check_gradcam_falls_when_weights_are_randomised(square_net):
    model, images, _ = square_net
    before = [p.clone() for p in model.parameters()]
    found = cascading_randomization(
        model, get_method("gradcam"), "features", images[:1], torch.tensor([1]), ["x"], depth=1
    )
    rows = found["stages"]
    assert [r["randomized_through"] for r in rows] == ["fc", "features"]
    assert rows[-1]["spearman"] < 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_spearman():
    a = torch.arange(16.0).view(4, 4)
    assert spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


# --------------------------------------------------------------------- every method, clean model


class BnNet(nn.Module):
    """conv-BN-ReLU twice, pooling and a linear head: batch norm moves its running statistics
    in train mode, so any forward pass a method makes outside eval mode shows."""

    def __init__(self, fail_on: int = 0) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)
        self.fail_on, self.calls = fail_on, 0

    def forward(self, x):
        self.calls += 1
        features = self.features(x)  # batch norm has run (and, in train mode, moved)
        if self.calls == self.fail_on:
            raise RuntimeError("forward failed on purpose")
        return self.fc(self.pool(features).flatten(1))


def _bn_net(train, channels_last, fail_on=0):
    torch.manual_seed(0)
    model = BnNet(fail_on)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train(train)
    model.features[4].train(not train)  # flags are restored per module, not model-wide
    model.features[0].weight.requires_grad_(False)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)  # a caller's gradient survives
    with torch.no_grad():  # running statistics that differ from the defaults
        model.features[1].running_mean.uniform_(-1, 1)
        model.features[1].running_var.uniform_(0.5, 2)
    return model


def _fingerprint(model):
    """Everything a method must leave as it found it."""
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "layout": [
            (n, p.stride(), p.is_contiguous(memory_format=torch.channels_last))
            for n, p in model.named_parameters()
        ],
        "training": [(n, m.training) for n, m in model.named_modules()],
        "requires_grad": [(n, p.requires_grad) for n, p in model.named_parameters()],
        "grad": [
            (n, None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()
        ],
    }


def _assert_unchanged(model, before):
    after = _fingerprint(model)
    assert after["state"].keys() == before["state"].keys()
    moved = [k for k, v in before["state"].items() if not torch.equal(v, after["state"][k])]
    assert moved == []
    assert after["layout"] == before["layout"]
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    for (name, old), (_, new) in zip(before["grad"], after["grad"], strict=True):
        assert (old is None and new is None) or torch.equal(old, new), name
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        assert not module._backward_hooks and not module._backward_pre_hooks
    assert torch.is_grad_enabled()


def test_preserved_state_hands_back_whatever_happened_inside():
    """The guard every method run goes through: eval mode inside, the model as it was after."""
    from vizcli.hooks import preserved_state

    model = _bn_net(True, False)
    before = _fingerprint(model)
    with pytest.raises(KeyError), preserved_state(model):
        assert not any(m.training for m in model.modules())
        model.train()
        model(torch.randn(2, 3, 8, 8))  # moves the running statistics
        model.to(memory_format=torch.channels_last)
        model.fc.weight.grad = None
        model.fc.bias.grad = torch.zeros_like(model.fc.bias)
        for p in model.parameters():
            p.requires_grad_(False)
        raise KeyError("fails inside")
    _assert_unchanged(model, before)


MULTI_PASS = {"scorecam", "ablationcam", "smoothgrad", "integrated-gradients"}


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_leaves_the_model_unchanged(method, mode, layout):
    model = _bn_net(mode == "train", layout == "channels_last")
    before = _fingerprint(model)
    layer = "features" if get_method(method).uses_layer else None
    images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    maps, _ = get_method(method)(LayerProbe(model, layer), images, None)
    assert maps.shape == (2, 16, 16) and (maps >= 0).all()
    _assert_unchanged(model, before)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_leaves_the_model_unchanged_when_it_fails(method):
    """The forward raises after batch norm ran: on the first pass, or for methods that make
    many passes on the second, in the middle of the method's own loop."""
    model = _bn_net(True, True, fail_on=2 if method in MULTI_PASS else 1)
    before = _fingerprint(model)
    layer = "features" if get_method(method).uses_layer else None
    with pytest.raises(RuntimeError, match="failed on purpose"):
        get_method(method)(LayerProbe(model, layer), torch.randn(2, 3, 16, 16), None)
    _assert_unchanged(model, before)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_leaves_the_model_unchanged_for_a_bad_class(method):
    model = _bn_net(True, True)
    before = _fingerprint(model)
    layer = "features" if get_method(method).uses_layer else None
    with contextlib.suppress(RuntimeError, IndexError):  # eigencam ignores the class
        get_method(method)(
            LayerProbe(model, layer), torch.randn(2, 3, 16, 16), torch.tensor([7, 7])
        )
    _assert_unchanged(model, before)


def test_scorecam_keeps_a_channels_last_model_channels_last_in_eval_mode():
    model = _bn_net(False, True)
    weights = model.features[0].weight
    get_method("scorecam")(LayerProbe(model, "features"), torch.randn(1, 3, 16, 16), None)
    assert model.features[0].weight is weights
    assert weights.is_contiguous(memory_format=torch.channels_last) and not weights.is_contiguous()


def test_guided_backprop_differs_from_plain_saliency(square_net):
    model, images, _ = square_net
    plain, _ = get_method("saliency")(LayerProbe(model, None), images[:1], torch.tensor([1]))
    guided, _ = get_method("guided-backprop")(
        LayerProbe(model, None), images[:1], torch.tensor([1])
    )
    assert not torch.allclose(plain, guided)


def test_failures_clean_up_too(square_net):
    model, images, _ = square_net
    with pytest.raises(UsageError, match="not an image-like tensor"):
        get_method("gradcam")(LayerProbe(model, "fc"), images[:1], None)
    assert not has_hooks(model) and torch.is_grad_enabled()


def test_target_layer_choice():
    from torchvision.models import resnet18, swin_t, vit_b_16

    image = torch.randn(1, 3, 64, 64)
    assert choose_layer(resnet18().eval(), image, None) == ("layer4", True)
    assert choose_layer(vit_b_16(), image, None) == ("encoder.layers.encoder_layer_11.ln_1", True)
    assert choose_layer(swin_t(), image, None) == ("norm", True)
    with pytest.raises(UsageError, match="did you mean 'layer4'"):
        choose_layer(resnet18(), image, "layer5")


def test_vit_tokens_are_explained_on_their_grid():
    from torchvision.models import vit_b_32

    torch.manual_seed(0)
    model = vit_b_32().eval()
    layer, _ = choose_layer(model, None, None)
    maps, _ = get_method("gradcam")(LayerProbe(model, layer), torch.randn(1, 3, 224, 224), None)
    assert maps.shape == (1, 7, 7)


def test_class_targets():
    names = ["tabby cat", "tiger cat", "golden retriever"]
    assert resolve_targets(["2", "Tabby Cat", "retriever"], names) == [2, 0, 2]
    assert resolve_targets([" -0 ", "+1"], names) == [0, 1]
    messages = {
        "3": "class index 3 is out of range (the model has 3 classes: 0..2)",
        "-1": "class index -1 is out of range (the model has 3 classes: 0..2)",
        "cat": "unknown class 'cat' (matches 'tabby cat', 'tiger cat')",
        "tabby cta": "unknown class 'tabby cta' (did you mean 'tabby cat'?)",
        "zebra": "unknown class 'zebra' (give a class index or name)",
    }
    for text, message in messages.items():
        with pytest.raises(UsageError) as caught:
            resolve_targets(["1", text], names)
        assert str(caught.value) == message
    with pytest.raises(UsageError, match="unknown method"):
        get_method("gradcan")


# --------------------------------------------------------------------- image labels


def test_cam_tells_images_with_the_same_name_in_two_folders_apart(cli, tmp_path):
    from PIL import Image

    from tests.conftest import SAMPLES
    from tests.tb import read_events

    for folder, sample in (("a", "chelsea.png"), ("b", "camera.png")):
        (tmp_path / folder).mkdir()
        with Image.open(SAMPLES / sample) as image:
            image.convert("RGB").resize((40, 40)).save(tmp_path / folder / "cat.png")
    args = ["cam", "tests.tiny_models:TinyNet", "--weights", "none", "--size", "32", "--npy"]
    paths = [str(tmp_path / "a" / "cat.png"), str(tmp_path / "b" / "cat.png")]
    out, logdir = tmp_path / "png", tmp_path / "tb"
    result = cli(*args, *paths, "--out", str(out), "--logdir", str(logdir), "--run", "r")
    assert result.code == 0, result.stderr
    images = [line.split()[0] for line in result.stdout.splitlines() if "cat " in line]
    assert images == ["a/cat", "b/cat"]  # two rows, each with its own predictions
    names = sorted(p.name for p in (out / "r").iterdir())
    for label in ("a__cat", "b__cat"):
        assert sum(name.startswith(label + "__") for name in names) == 4  # 3 PNGs and the .npy
    assert not [name for name in names if "-2" in name]
    events = read_events(logdir / "r")
    assert [e.step for e in events.Images("cam/gradcam/overlay")] == [0, 1]


def test_smoothgrad_maps_do_not_depend_on_the_batch():
    """Each image's noise comes from its own generator seeded with --seed: the same map
    whatever the batch size, the image's position and its neighbours."""
    from tests.conftest import SAMPLES, TINY
    from vizcli.cam.explain import CamOptions, explain
    from vizcli.models import resolve_model

    torch.manual_seed(0)
    loaded = resolve_model(f"{TINY}:TinyNet", device="cpu")
    loaded.preprocess = loaded.preprocess.with_size(48)
    paths = [SAMPLES / "chelsea.png", SAMPLES / "coffee.png", SAMPLES / "camera.png"]

    def maps(order, batch_size, seed=0):
        report = explain(loaded, [paths[i] for i in order],
                         CamOptions("smoothgrad", batch_size=batch_size, seed=seed),
                         lambda a: None)  # fmt: skip
        return {r.image: r.map for r in report.results}

    alone = maps([0, 1, 2], 1)
    for other in (maps([0, 1, 2], 3), maps([2, 0, 1], 2)):
        for name, value in alone.items():
            torch.testing.assert_close(other[name], value, atol=1e-6, rtol=0)
    reseeded = maps([0], 1, seed=7)
    assert not torch.allclose(reseeded["chelsea"], alone["chelsea"])


def test_sanity_check_block_by_block_for_every_image(tmp_path):
    """Adebayo et al.'s cascading randomisation: the blocks at --sanity-depth, from the logits
    down, every image; per stage Spearman (signed, absolute), SSIM and HOG; curve and
    scalars to the sinks; per-image stages in the report."""
    from tests.conftest import SAMPLES, TINY
    from vizcli import artifacts
    from vizcli.cam import metrics
    from vizcli.cam.explain import CamOptions, explain
    from vizcli.models import resolve_model

    torch.manual_seed(0)
    loaded = resolve_model(f"{TINY}:Shapes", device="cpu")
    assert metrics.randomization_stages(loaded.model, 1) == [
        "rgb", "grouped", "depthwise", "transposed", "one_d", "three_d", "head"]  # fmt: skip
    loaded = resolve_model(f"{TINY}:TinyNet", device="cpu")
    loaded.preprocess = loaded.preprocess.with_size(48)
    emitted = []
    paths = [SAMPLES / "chelsea.png", SAMPLES / "coffee.png", SAMPLES / "camera.png"]
    report = explain(loaded, paths, CamOptions("gradcam", sanity=True, sanity_depth=2,
                                               batch_size=2), emitted.append)  # fmt: skip
    layers = [row["randomized_through"] for row in report.sanity]
    assert layers == ["fc", "features.0"]  # logits first; the pool and ReLU have no weights
    assert [entry["image"] for entry in report.sanity_images] == ["chelsea", "coffee", "camera"]
    for entry in report.sanity_images:
        for stage in entry["stages"]:
            assert set(stage) == {"layer", "spearman", "spearman_abs", "ssim", "hog"}
            assert -1 <= stage["spearman"] <= 1 and -1 <= stage["ssim"] <= 1
    mean = sum(e["stages"][0]["ssim"] for e in report.sanity_images) / 3
    assert report.sanity[0]["ssim"] == pytest.approx(mean)
    scalars = [a for a in emitted if isinstance(a, artifacts.Scalar)]
    assert {a.tag for a in scalars} == {f"sanity/gradcam/{k}" for k in
                                        ("spearman", "spearman_abs", "ssim", "hog")}  # fmt: skip
    assert any(isinstance(a, artifacts.Image) and a.tag == "sanity/gradcam/curve" for a in emitted)
    options = CamOptions("gradcam", sanity=True, sanity_images=2, sanity_depth=1, batch_size=2)
    two = explain(loaded, paths, options, lambda a: None)
    assert len(two.sanity_images) == 2
    assert [row["randomized_through"] for row in two.sanity] == ["fc", "features"]  # depth 1


def test_ssim_and_hog_similarity_of_known_pairs():
    from vizcli.cam import metrics

    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    blob = torch.exp(-((yy - 20) ** 2 + (xx - 30) ** 2) / 80)
    assert metrics.ssim(blob, blob) == pytest.approx(1.0)
    assert metrics.hog_similarity(blob, blob) == pytest.approx(1.0)
    moved = torch.exp(-((yy - 45) ** 2 + (xx - 40) ** 2) / 80)
    assert metrics.ssim(blob, moved) < 0.5 and metrics.hog_similarity(blob, moved) < 0.5
    assert metrics.ssim(blob, 1 - blob) < 0


@pytest.mark.parametrize(
    ("stages", "verdict", "passed"),
    [
        ([0.9, 0.3], "depends on the model", True),
        ([0.9, 0.49], "depends on the model", True),
        ([0.2, 0.5], "insensitive to the model", False),  # 0.5 itself does not pass
        ([0.1, 0.8], "insensitive to the model", False),  # the last stage decides
    ],
)
def test_the_sanity_verdict_reads_the_last_stage_against_one_half(stages, verdict, passed):
    from vizcli.cam.explain import CamReport

    report = CamReport("gradcam", "Grad-CAM", "layer4", False)
    assert report.sanity_verdict() is None and report.sanity_message() is None
    report.sanity = [{"spearman": value} for value in stages]
    assert report.sanity_verdict() == verdict
    final = f"{stages[-1]:.2f}"
    expected = (
        f"sanity: Grad-CAM maps change when the weights are randomised (rank correlation "
        f"{final}): they depend on what the model learned"
        if passed
        else f"sanity: Grad-CAM maps barely change when the weights are randomised (rank "
        f"correlation {final}): they show the input's structure, not what this model learned"
    )
    assert report.sanity_message() == (passed, expected)


def test_original_cam_names_the_layer_it_needs_and_the_way_out():
    """CAM reads the classifier's weights: at a layer of another width, and on a model with no
    linear classifier, one error line says what it needs and what to use instead."""
    wrong_layer = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 1),
                                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))  # fmt: skip
    image = torch.rand(1, 3, 16, 16)
    with pytest.raises(UsageError) as caught:
        get_method("cam")(LayerProbe(wrong_layer, "0"), image, torch.tensor([1]))
    assert str(caught.value) == (
        "cam needs the layer feeding global pooling + linear (6 channels); '0' has 8 "
        "(use gradcam, which works for any layer)"
    )
    no_linear = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(UsageError) as caught:
        get_method("cam")(LayerProbe(no_linear, "0"), image, torch.tensor([1]))
    assert str(caught.value) == "cam needs a model ending in a linear classifier (use gradcam)"
    assert not has_hooks(wrong_layer) and not has_hooks(no_linear)


@pytest.mark.parametrize("absolute", ["same", "different"])
def test_the_absolute_rank_correlation_shows_only_where_it_differs(absolute):
    """Every map here is >= 0, so |Spearman| equals Spearman: the table and the curve show it
    only when a map with signs makes it differ (its orange line would hide the red one)."""
    from rich.console import Console

    from vizcli.cam.explain import CamReport
    from vizcli.draw.overlays import sanity_curve
    from vizcli.report.tables import sanity_renderable

    report = CamReport("gradcam", "Grad-CAM", "layer4", False)
    report.sanity = [
        {"randomized_through": name, "spearman": s, "ssim": 0.3, "hog": 0.2,
         "spearman_abs": s if absolute == "same" else -s}
        for name, s in (("fc", 0.8), ("layer4", 0.1))
    ]  # fmt: skip
    console = Console(width=120, record=True)
    console.print(sanity_renderable(report))
    header = next(x for x in console.export_text().splitlines() if "Randomised" in x).split()
    shown = ["Spearman", "SSIM", "HOG"]
    if absolute == "different":
        shown.insert(1, "|Spearman|")
    assert header[-len(shown) :] == shown and "|Spearman|" not in header[: -len(shown)]
    curve = sanity_curve(report)
    orange = (curve == np.array([255, 127, 14], np.uint8)).all(-1).sum()
    red = (curve == np.array([214, 39, 40], np.uint8)).all(-1).sum()
    assert red > 100
    assert (orange > 100) if absolute == "different" else (orange == 0)


def test_input_frame_pixels_round_to_bytes_and_widen_gray():
    """``--frame input`` draws the model's input: floats in [0, 1] to the nearest byte
    (127.5 to even 128), out-of-range values clipped, one channel repeated as grey."""
    from vizcli.draw.overlays import to_pixels

    values = torch.tensor([-0.2, 0.0, 0.4 / 255, 0.6 / 255, 0.5, 254.6 / 255, 1.0, 1.3])
    expected = np.array([0, 0, 0, 1, 128, 255, 255, 255], np.uint8)
    rgb = torch.stack([values, values.flip(0), torch.full_like(values, 0.25)]).view(3, 2, 4)
    found = to_pixels(rgb)
    assert found.dtype == np.uint8 and found.shape == (2, 4, 3)
    np.testing.assert_array_equal(found[..., 0].ravel(), expected)
    np.testing.assert_array_equal(found[..., 1].ravel(), expected[::-1])
    assert (found[..., 2] == 64).all()  # 63.75
    gray = to_pixels(values.view(1, 2, 4))
    assert gray.shape == (2, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(gray[..., channel].ravel(), expected)


def test_sanity_curve_geometry():
    """The curve's frame: white canvas, grid lines at -1, -0.5, 0, 0.5, 1 between y = 296 and
    28, one marker per stage from x = 48 to 628 at the measured value."""
    from vizcli.cam.explain import CamReport
    from vizcli.draw.overlays import sanity_curve

    report = CamReport("gradcam", "Grad-CAM", "layer4", False)
    values = {"spearman": [1.0, 0.0, -1.0], "ssim": [0.5, 0.25, -0.5], "hog": [-0.25, 0.75, 0.5]}
    report.sanity = [
        {"randomized_through": f"block{i}", "spearman_abs": values["spearman"][i],
         **{k: v[i] for k, v in values.items()}}
        for i in range(3)
    ]  # fmt: skip
    curve = sanity_curve(report)
    assert curve.shape == (360, 640, 3)
    for y, x in ((0, 0), (0, 639), (359, 0), (359, 639), (150, 635)):
        assert tuple(curve[y, x]) == (255, 255, 255)
    grey = (curve == 225).all(-1).sum(1)
    assert sorted(np.argsort(grey)[-5:]) == [28, 95, 162, 229, 296]  # y = 296 - (v + 1) * 134
    assert grey[[28, 95, 162, 229, 296]].min() > 400
    colours = {"spearman": (214, 39, 40), "ssim": (31, 119, 180), "hog": (44, 160, 44)}
    for key, colour in colours.items():
        for step, value in enumerate(values[key]):
            x, y = 48 + step * 290, round(296 - (value + 1) * 134)
            assert tuple(curve[y, x]) == colour, (key, step)


class _ToChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class _ToChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


def test_ablation_cam_is_the_same_on_a_channels_last_layer_and_per_image():
    """Ablation-CAM zeroes channels on the layer's own channel axis: a channels-last copy of a
    network (Swin and ConvNeXt stages are stored so) gets the same maps, and each image of a
    batch gets the map it gets alone."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 4, stride=4)
    head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    first = nn.Sequential(conv, head).eval()
    last = nn.Sequential(conv, _ToChannelsLast(), _ToChannelsFirst(), head).eval()
    images = torch.rand(2, 3, 32, 32)
    classes = torch.tensor([0, 2])
    ablation = get_method("ablationcam")
    expected, _ = ablation(LayerProbe(first, "0"), images, classes)
    probe = LayerProbe(last, "1")
    found, _ = ablation(probe, images, classes)
    assert probe.layout.kind == "nhwc" and expected.shape == (2, 8, 8)
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-6)
    for i in range(2):
        alone, _ = ablation(LayerProbe(first, "0"), images[i : i + 1], classes[i : i + 1])
        torch.testing.assert_close(expected[i : i + 1], alone, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(expected[0], expected[1])


def test_a_flat_layer_is_one_error_line_with_the_way_out():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    with pytest.raises(UsageError) as caught:
        get_method("gradcam")(LayerProbe(model, "3"), torch.rand(1, 3, 16, 16), None)
    assert str(caught.value) == (
        "the layer outputs (1, 2), not an image-like tensor "
        "(pick a convolutional layer; see 'vizcli layers MODEL')"
    )
    assert not has_hooks(model)


def test_explain_reports_what_the_model_computes():
    """The report against the model run by hand: every class's probability (softmax) and rank,
    the asked-for class explained from the first pass on, its map equal to the method's own."""
    from tests.conftest import SAMPLES, TINY
    from vizcli.cam.explain import CamOptions, explain
    from vizcli.images import load_tensor
    from vizcli.models import resolve_model

    torch.manual_seed(0)
    loaded = resolve_model(f"{TINY}:TinyNet", device="cpu")
    loaded.preprocess = loaded.preprocess.with_size(48)
    paths = [SAMPLES / "chelsea.png", SAMPLES / "coffee.png"]
    batch = torch.cat([load_tensor(p, loaded.preprocess) for p in paths])
    with torch.no_grad():
        probabilities = torch.softmax(loaded.model(batch), 1)
    target = int(probabilities[0].argmin())  # not the top class of the first image
    options = CamOptions("gradcam", layer="features.0", targets=(str(target),))
    report = explain(loaded, paths, options, lambda artifact: None)
    assert (report.method, report.title, report.layer) == ("gradcam", "Grad-CAM", "features.0")
    for path, p in zip(paths, probabilities, strict=True):
        order = [int(i) for i in p.argsort(descending=True)]
        found = report.predictions[path.stem]
        assert [x.index for x in found] == order  # all 4 classes, most probable first
        assert [x.rank for x in found] == [1, 2, 3, 4]
        for x in found:
            assert x.probability == pytest.approx(float(p[x.index]), abs=1e-6)
    assert [r.image for r in report.results] == ["chelsea", "coffee"]
    for result, p in zip(report.results, probabilities, strict=True):
        assert result.target.index == target and result.rank == 0
        assert result.target.probability == pytest.approx(float(p[target]), abs=1e-6)
        assert result.target.rank == 1 + int((p > p[target]).sum())
    expected, _ = get_method("gradcam")(
        LayerProbe(loaded.model, "features.0"), batch, torch.tensor([target, target])
    )
    torch.testing.assert_close(torch.stack([r.raw for r in report.results]), expected)
    details = report.manifest_details(options)
    assert "sanity" not in details and details["method"] == "gradcam"
    assert details["normalization"] == {
        "pictures": "each map min-max scaled to [0, 1] on its own, then upsampled bilinearly "
        "to the model's crop",
        "npy": "the method's raw values at its own resolution, not normalised",
    }


def test_panel_overlay_and_the_original_frame_pixel_by_pixel():
    """The picture helpers against hand-made expectations: tiles side by side below an
    18-pixel caption strip with 4-pixel white gaps, the caption black at 13 px; the blend as
    OpenCV computes it; the map laid into the photo's frame as OpenCV resizes it."""
    from vizcli.draw.overlays import in_original_frame, overlay, panel

    tiles = [np.full((20, 150, 3), 50, np.uint8), np.full((16, 100, 3), 100, np.uint8)]
    out = panel(tiles, "tiger cat 37.9%  gradcam")
    assert out.shape == (18 + 20, 150 + 4 + 100, 3)
    assert (out[18:38, :150] == 50).all() and (out[18:34, 154:] == 100).all()
    assert (out[18:, 150:154] == 255).all() and (out[34:, 154:] == 255).all()  # gap, below
    strip = out[:18]
    dark = np.argwhere((strip < 128).all(-1))
    assert dark[:, 1].min() < 8 and dark[:, 1].max() > 140  # 13 px text, from x = 4
    assert (strip == 0).all(-1).any()  # drawn in black

    rng = np.random.default_rng(0)
    pixels, heat = rng.integers(0, 256, (2, 9, 7, 3), dtype=np.uint8)
    for alpha in (0.0, 0.35, 1.0):
        expected = cv2.addWeighted(pixels, 1 - alpha, heat, alpha, 0)
        assert np.abs(overlay(pixels, heat, alpha).astype(int) - expected).max() <= 1
    black = np.zeros((4, 4, 3), np.uint8)
    assert (overlay(black, black, 0.5) == 0).all()

    photo = np.zeros((30, 40, 3), np.uint8)
    small = torch.rand(5, 5, generator=torch.Generator().manual_seed(1))
    full, seen = in_original_frame(photo, small, [-5.0, 2.0, 35.0, 42.0])  # left and bottom cut
    whole = cv2.resize(small.numpy(), (40, 40), interpolation=cv2.INTER_LINEAR)
    assert full.dtype == np.float32 and seen.dtype == bool
    np.testing.assert_allclose(full[2:30, 0:35], whole[0:28, 5:40], atol=1e-5)
    assert (full[:2] == 0).all() and (full[:, 35:] == 0).all()
    assert seen[2:30, :35].all() and seen.sum() == 28 * 35
    away, nothing = in_original_frame(photo, small, [50.0, 0.0, 90.0, 30.0])  # beyond the photo
    assert not nothing.any() and (away == 0).all()


def test_sanity_curve_names_its_first_and_last_stage_in_black():
    from vizcli.cam.explain import CamReport
    from vizcli.draw.overlays import sanity_curve

    report = CamReport("gradcam", "Grad-CAM", "layer4", False)
    report.sanity = [{"randomized_through": n, "spearman": 0.5, "spearman_abs": 0.5, "ssim": 0.2,
                      "hog": 0.1} for n in ("fc", "layer4", "conv1")]  # fmt: skip
    curve = sanity_curve(report)
    caption = curve[300:318, 48:600]  # "fc ... conv1 (logits -> input)" below the plot
    assert (caption == 0).all(-1).sum() >= 5  # anti-aliased: a few pixels are pure black


class _Tokens(nn.Module):
    """Patch tokens, a LayerNorm, then a linear projection (a ViT block's qkv) and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 8, stride=8)
        self.norm = nn.LayerNorm(8)
        self.qkv = nn.Linear(8, 24)
        self.head = nn.Linear(24, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.qkv(self.norm(tokens)).mean(1))


class _Flat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)[:, :12])


def test_the_automatic_layer_is_the_map_a_projection_reads_or_a_clear_error():
    """A linear projection of tokens (qkv) is explained on the map it projects (the norm);
    a model with no spatial layer at all says so and how to go on."""
    torch.manual_seed(0)
    assert choose_layer(_Tokens().eval(), torch.rand(1, 3, 32, 32), None) == ("norm", True)
    with pytest.raises(UsageError) as caught:
        choose_layer(_Flat(), torch.rand(1, 3, 32, 32), None)
    assert str(caught.value) == "no layer outputs a spatial map to explain (give --layer)"
