"""Small models for tests, importable as ``tests/tiny_models.py:NAME`` factories."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """conv -> relu -> pool -> linear: a CNN small enough to build in microseconds."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


CREATED: list[nn.Module] = []  # every model built through tracked(), for hook-cleanup tests


def tiny_net() -> nn.Module:
    return TinyNet()


def tracked() -> nn.Module:
    model = TinyNet()
    CREATED.append(model)
    return model


class Shapes(nn.Module):
    """Every kind of convolution kernels can draw, plus a layer with a flat output."""

    def __init__(self) -> None:
        super().__init__()
        self.rgb = nn.Conv2d(3, 6, 3, padding=1)
        self.grouped = nn.Conv2d(6, 8, 3, padding=1, groups=2)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.transposed = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.one_d = nn.Conv1d(4, 5, 7)
        self.three_d = nn.Conv3d(2, 3, (2, 3, 3))
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.transposed(self.depthwise(self.grouped(self.rgb(x))))
        return self.head(y.mean((2, 3)))


class OtherNet(nn.Module):
    """A different architecture, for checkpoint mismatch tests."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(4, 7)


class TwoInputs(nn.Module):
    """Takes an image and token ids: a model that needs several inputs and dtypes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.embed = nn.Embedding(10, 4)

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.conv(image).mean((2, 3)) + self.embed(tokens).mean(1)


class DataDependent(nn.Module):
    """Its forward reads a value (``.item()``), which the meta device cannot do."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.sum().item() > 1e9:
            return y * 2
        return y


def not_a_model() -> str:
    return "I am a string"


def broken_factory() -> nn.Module:
    raise ValueError("factory exploded")


class InputProbe(nn.Module):
    """TinyNet with an ``input`` layer (Identity) whose output is exactly what the model gets."""

    def __init__(self) -> None:
        super().__init__()
        self.input = nn.Identity()
        self.net = TinyNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.input(x))


def declared() -> nn.Module:
    """A model declaring its preprocessing and class names the timm way (``pretrained_cfg``)."""
    model = InputProbe()
    model.pretrained_cfg = {
        "input_size": (3, 96, 96),
        "crop_pct": 0.75,
        "interpolation": "bicubic",
        "mean": (0.0, 0.0, 0.0),
        "std": (1.0, 1.0, 1.0),
        "label_names": ["alpha", "beta", "gamma", "delta"],
    }
    return model


def self_loading() -> nn.Module:
    """A factory that loads its own checkpoint (path from VIZCLI_TEST_CHECKPOINT)."""
    import os

    model = InputProbe()
    model.load_state_dict(torch.load(os.environ["VIZCLI_TEST_CHECKPOINT"], weights_only=True))
    return model


def printing() -> nn.Module:
    """A factory and a forward that print, as research code does."""
    print("building the model...")

    class Chatty(TinyNet):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            print("forward!")
            return super().forward(x)

    return Chatty()


class ReturnsNone(TinyNet):
    def forward(self, x: torch.Tensor) -> None:  # type: ignore[override]
        super().forward(x)


def exits() -> nn.Module:
    import sys

    sys.exit(3)


class Recurrent(nn.Module):
    """An LSTM over a sequence (input 20 x 1 x 32): fused kernels on a real CPU build."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(32, 64)
        self.head = nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][-1])


class Attention(nn.Module):
    """nn.MultiheadAttention and a TransformerEncoderLayer: fast paths in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)
        self.layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.attn(x, x, x, need_weights=False)[0]).mean(1)


class ConvBnRelu(nn.Module):
    """conv 3->4 (3x3) -> BatchNorm -> ReLU: saved tensors countable on paper."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def zero_head() -> nn.Module:
    """TinyNet whose classifier is all zeros (as torchvision's ViT heads start): every
    gradient is zero, so every gradient-based map is constant."""
    model = TinyNet()
    nn.init.zeros_(model.fc.weight)
    nn.init.zeros_(model.fc.bias)
    return model


class Tokens(nn.Module):
    """int64 token ids -> embedding -> mean -> linear (input 2 x 10 of dtype int64)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x).mean(1))


def double_net() -> nn.Module:
    """TinyNet in float64: every byte count doubles."""
    return TinyNet().double()


class PartlyFrozen(nn.Module):
    """A frozen stem, a head with a frozen weight and a trainable bias, and one block called
    twice (its parameters belong to its first call only)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 5)
        self.stem.requires_grad_(False)
        self.head.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(self.block(self.stem(x)))
        return self.head(y.mean((2, 3)))


class KeepPositive(nn.Module):
    """Keeps the input's positive values only (a size that depends on the data), then scales
    them: what it saves for backward depends on the picture, not just its shape."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(x[x > 0].unsqueeze(1))


class ParamFree(nn.Module):
    """ReLU then max pooling: no parameter at all."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(x))


class Gated(nn.Module):
    """A block with a raw parameter of its own and a layer it never calls."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4, 1, 1))
        self.conv = nn.Conv2d(4, 4, 1)
        self.unused = nn.Linear(4, 4)  # 20 parameters that never run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.scale


class NeverRuns(nn.Module):
    """Parameters outside any row: a raw one on the model, an auxiliary head that never runs
    (two levels deep), and a block's unused layer."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.ones(4, 1, 1))
        self.conv = nn.Conv2d(3, 4, 3)
        self.block = Gated()
        self.aux = nn.Sequential(nn.Sequential(nn.Linear(4, 2)))  # 10 parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.conv(x) * self.gate)


class Recorder(nn.Module):
    """A leaf that returns nothing: it keeps the largest value it has seen."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("largest", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> None:
        self.largest = torch.maximum(self.largest, x.detach().max())


class WithRecorder(nn.Module):
    """conv 3->4 3x3 whose output a ``Recorder`` looks at on the way."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.recorder = Recorder()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        self.recorder(y)
        return y


def loaded(model: nn.Module, size: int = 8):
    """``model`` wrapped as vizcli's LoadedModel: random weights on the CPU, a plain
    ``size`` x ``size`` squash preprocessing (mean 0.5, std 0.5), as the core functions take it."""
    from vizcli.images import Preprocess
    from vizcli.models.loaded import LoadedModel, WeightsInfo

    return LoadedModel(
        model=model,
        spec="test",
        name="test",
        source="factory",
        task=None,
        weights=WeightsInfo(requested="none", kind="random"),
        device=torch.device("cpu"),
        preprocess=Preprocess(None, (size, size), (0.5,) * 3, (0.5,) * 3),
    )


class Brightness(nn.Module):
    """A second convolution runs only on bright inputs: its work depends on the values."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 4, 3, padding=1)
        self.second = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean().item() > 0.5:  # never true for the seeded random input (mean about 0)
            return self.second(self.first(x))
        return self.first(x)


class LooksLikeMeta(nn.Module):
    """Fails for real with an error that mentions 'meta' (as a meta-device problem would)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("metadata of this input is not supported")


class Nested(nn.Module):
    """Six levels of containers around one convolution."""

    def __init__(self) -> None:
        super().__init__()
        inner: nn.Module = nn.Conv2d(3, 4, 3)
        for _ in range(5):
            inner = nn.Sequential(inner)
        self.body = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TwoConvs(nn.Module):
    """Two convolutions (6 and 8 channels, the second at stride 2) and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(self.conv1(x).relu()).relu().mean((2, 3)))


def two_convs() -> nn.Module:
    torch.manual_seed(0)
    return TwoConvs()


class Buggy(nn.Module):
    """A user's model with a bug: its forward feeds a 3-channel convolution 4 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x, x[:, :1]], 1)).mean((2, 3))


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("boom in the user's forward")


def stack() -> nn.Module:
    """conv, relu, conv, pool, flatten, linear in one Sequential (for diff's alignment)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
    )  # fmt: skip


def stack_inserted() -> nn.Module:
    """``stack`` with a BatchNorm inserted after the first conv: every later index shifts by
    one, and the second conv is wider (16 -> 24 channels)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 24, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 4),
    )  # fmt: skip


class NanNet(nn.Module):
    """A layer that takes the logarithm of a conv's output: NaN wherever it is negative."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).log().mean((2, 3)))


class DeadNet(nn.Module):
    """Six of eight channels of its ReLU never fire: their conv bias is -100."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.relu = nn.ReLU()
        self.head = nn.Linear(8, 3)
        with torch.no_grad():
            self.conv.bias[2:] = -100.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.conv(x)).mean((2, 3)))
