"""`make bench`'s actmax section: torch-lucent's ``render_vis`` doing vizcli's work, in its
own process so its wall time and peak RSS are its own.

    python bench/actmax_bench.py lucent STEPS OUT.json

Renders 8 channels of EfficientNet-Lite0's ``_blocks.8`` at 224x224 as one batch (Lucent's
Fourier parameterisation, decorrelated colour, its standard transforms, Adam at 0.05, the
model's own normalisation), then writes each picture's own channel mean, seen without
transforms, to OUT.json.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.simplefilter("ignore")

LAYER, CHANNELS, SIZE = "_blocks.8", tuple(range(8)), 224
MEAN, STD = (0.498,) * 3, (0.502,) * 3  # examples/efficientnet_lite0.py's preprocessing


def lucent(steps: int, out: Path) -> None:
    from lucent.optvis import objectives, param, render, transform

    from examples.efficientnet_lite0 import efficientnet_lite0

    torch.manual_seed(0)
    np.random.seed(0)
    model = efficientnet_lite0().eval()
    objective = sum(
        objectives.channel(LAYER.replace(".", "_"), c, batch=b) for b, c in enumerate(CHANNELS)
    )
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    transforms = [*transform.standard_transforms, lambda x: (x - mean) / std]
    (images,) = render.render_vis(
        model, objective, lambda: param.image(SIZE, batch=len(CHANNELS)), transforms=transforms,
        thresholds=(steps,), preprocess=False, progress=False, show_image=False,
    )  # fmt: skip
    pictures = torch.from_numpy(images).permute(0, 3, 1, 2)
    seen = {}
    layer = dict(model.named_modules())[LAYER]
    layer.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        model((pictures - mean) / std)
    values = seen["out"][:, list(CHANNELS)].mean((2, 3)).diagonal()
    out.write_text(json.dumps({"final": values.tolist()}))


if __name__ == "__main__":
    lucent(int(sys.argv[2]), Path(sys.argv[3]))
