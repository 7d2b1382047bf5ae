"""Helpers for `make bench`'s CAM section, run in their own process so peak RSS is theirs alone.

    python bench/cam_bench.py gradcam BATCH    -> ms per image: ours, pytorch-grad-cam, floor
    python bench/cam_bench.py scorecam WHO     -> seconds for one image (WHO: ours or theirs)
    python bench/cam_bench.py floor            -> the whole-process floor for `vizcli cam`
Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.simplefilter("ignore")


def _model():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet50().eval()


def _batch(size: int) -> torch.Tensor:
    from vizcli.images import IMAGENET_PREPROCESS, load_tensor

    image = load_tensor(ROOT / "sample_images" / "chelsea.png", IMAGENET_PREPROCESS)
    return image.expand(size, -1, -1, -1).clone()


def _interleaved_ms(fns: dict, images: int, repeats: int = 5) -> dict[str, float]:
    """Median ms per image of each function, measured in turns so drift hits all alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) / images * 1000 for name, t in times.items()}


def gradcam(batch_size: int) -> dict:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from vizcli.cam import LayerProbe, get_method

    model, batch = _model(), _batch(batch_size)
    classes = torch.full((batch_size,), 281)
    ours = get_method("gradcam")

    def run_ours():
        ours(LayerProbe(model, "layer4"), batch, classes)

    def run_theirs():
        with GradCAM(model=model, target_layers=[model.layer4]) as cam:
            cam(input_tensor=batch, targets=[ClassifierOutputTarget(281)] * batch_size)

    def run_floor():  # forward with autograd on, then the gradient at layer4 only
        kept = {}
        handle = model.layer4.register_forward_hook(lambda m, a, o: kept.update(o=o))
        try:
            with torch.enable_grad():
                score = model(batch)[:, 281].sum()
                torch.autograd.grad(score, kept["o"])
        finally:
            handle.remove()

    runs = {"ours_ms": run_ours, "theirs_ms": run_theirs, "floor_ms": run_floor}
    return _interleaved_ms(runs, batch_size)


def scorecam(who: str) -> dict:
    model, batch = _model(), _batch(1)
    start = time.perf_counter()
    if who == "ours":
        from vizcli.cam import LayerProbe, get_method

        maps, _ = get_method("scorecam")(LayerProbe(model, "layer4"), batch, torch.tensor([281]))
        cam = maps[0].numpy()
    else:
        from pytorch_grad_cam import ScoreCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        with ScoreCAM(model=model, target_layers=[model.layer4]) as method:
            method.batch_size = 16
            cam = method(input_tensor=batch, targets=[ClassifierOutputTarget(281)])[0]
    seconds = time.perf_counter() - start
    import numpy as np

    np.save(f"/tmp/vizcli_bench_scorecam_{who}.npy", cam)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak}


def floor() -> dict:
    """import + build resnet50 + forward + gradient at layer4, like `vizcli cam` minus writing."""
    model, batch = _model(), _batch(1)
    kept = {}
    model.layer4.register_forward_hook(lambda m, a, o: kept.update(o=o))
    with torch.enable_grad():
        score = model(batch)[:, 281].sum()
        torch.autograd.grad(score, kept["o"])
    return {}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "gradcam":
        print(json.dumps(gradcam(int(sys.argv[2]))))
    elif mode == "scorecam":
        print(json.dumps(scorecam(sys.argv[2])))
    else:
        print(json.dumps(floor()))
