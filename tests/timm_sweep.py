"""Every command's core on many timm architectures, the way a user reaches them (``timm/NAME``).

``python -m tests.timm_sweep`` prints the Markdown table the README shows; the test in
``test_timm_sweep.py`` asserts it. Random weights, one sample photo, each model's own size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from vizcli.errors import VizError, first_line

SAMPLE = Path(__file__).resolve().parents[1] / "sample_images" / "coffee.png"
COMMANDS = ("summary", "fmaps", "graph", "cam")

# family -> timm names (the smallest member of each family, so the sweep stays fast)
MODELS = {
    "ResNet": "resnet18",
    "ConvNeXt": "convnext_atto",
    "RegNet": "regnetx_002",
    "EfficientNet": "efficientnet_b0",
    "EfficientNet-Lite (TF)": "tf_efficientnet_lite0",
    "MobileNetV3": "mobilenetv3_small_050",
    "DenseNet": "densenet121",
    "RexNet": "rexnet_100",
    "RepViT": "repvit_m1",
    "FastViT": "fastvit_t8",
    "EdgeNeXt": "edgenext_xx_small",
    "PoolFormer": "poolformer_s12",
    "EfficientViT (MIT)": "efficientvit_b0",
    "Inception v3": "inception_v3",
    "ViT": "vit_tiny_patch16_224",
    "DeiT (distilled)": "deit_tiny_distilled_patch16_224",
    "ViT + registers": "vit_dwee_patch16_reg1_gap_256",
    "Swin": "swin_tiny_patch4_window7_224",
    "MaxViT": "maxvit_rmlp_pico_rw_256",
    "EVA-02": "eva02_tiny_patch14_224",
    "BEiT": "beit_base_patch16_224",
    "MobileViT": "mobilevit_xxs",
    "CoAtNet": "coatnet_nano_rw_224",
    "LeViT": "levit_128s",
    "PiT": "pit_ti_224",
    "CaiT": "cait_xxs24_224",
    "XCiT": "xcit_nano_12_p16_224",
    "PVT v2": "pvt_v2_b0",
    "EfficientFormer": "efficientformer_l1",
    "TinyViT": "tiny_vit_5m_224",
    "CrossViT": "crossvit_tiny_240",
    "MLP-Mixer": "mixer_s32_224",
    "gMLP": "gmlp_ti16_224",
    "ConViT": "convit_tiny",
    "Hiera": "hiera_tiny_224",
}


def run_one(name: str) -> dict[str, str]:
    """Each command's core on ``timm/name``: "ok", or the one-line reason it cannot work."""
    from vizcli.cam.explain import CamOptions, explain
    from vizcli.fmaps import FmapOptions, feature_maps
    from vizcli.graph import build_graphs
    from vizcli.layers import default_feature_layers
    from vizcli.models import resolve_model
    from vizcli.summary import input_specs, make_input, summarize

    spec = "timm/" + name
    loaded = resolve_model(spec, weights="none", device="cpu")

    def fmaps() -> None:
        layers = default_feature_layers(loaded.model)
        feature_maps(loaded, [SAMPLE], layers, FmapOptions(4), lambda a: None, strict=False)

    def graph() -> None:
        specs = input_specs(None, None, loaded.default_input_shapes)
        build_graphs(loaded.model, [make_input(s, loaded.device) for s in specs], 2, name, True)

    def cam() -> None:
        report = explain(loaded, [SAMPLE], CamOptions("gradcam"), lambda a: None)
        if not report.results:
            raise VizError("no map")

    steps: dict[str, Callable[[], object]] = {
        "summary": lambda: summarize(spec),
        "fmaps": fmaps,
        "graph": graph,
        "cam": cam,
    }
    outcome = {}
    for command, step in steps.items():
        try:
            step()
            outcome[command] = "ok"
        except VizError as exc:
            outcome[command] = str(exc)
        except Exception as exc:  # recorded, and the test fails on it: an internal error
            outcome[command] = f"INTERNAL {type(exc).__name__}: {first_line(exc)}"
    return outcome


def markdown(results: dict[str, dict[str, str]]) -> str:
    lines = ["| family | timm name | " + " | ".join(COMMANDS) + " |",
             "| --- | --- | " + " | ".join("---" for _ in COMMANDS) + " |"]  # fmt: skip
    for family, name in MODELS.items():
        cells = [("✓" if results[name][c] == "ok" else results[name][c]) for c in COMMANDS]
        lines.append(f"| {family} | `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    started = time.time()
    table = {name: run_one(name) for name in MODELS.values()}
    print(markdown(table))
    print(f"\n{len(MODELS)} models in {time.time() - started:.0f} s")
