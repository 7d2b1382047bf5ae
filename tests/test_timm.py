"""timm models by name: resolution, the Hugging Face cache, preprocessing and class names."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.conftest import ROOT, SAMPLES, run_subprocess
from vizcli.errors import ModelNotFoundError, UsageError, WeightsError
from vizcli.images import load_image, load_tensor, preprocess_from_cfg
from vizcli.models import resolve_model

timm = pytest.importorskip("timm")

REVISION = "0123456789abcdef0123456789abcdef01234567"


def seed_hub_cache(hf_home, hub_id: str, state: dict[str, torch.Tensor], filename: str) -> None:
    """Write ``state`` where huggingface_hub keeps ``hub_id``'s file: refs/main -> snapshot."""
    from safetensors.torch import save_file

    repo = hf_home / "hub" / ("models--" + hub_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REVISION)
    blob = repo / "blobs" / "f00dfeed"
    blob.parent.mkdir()
    if filename.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in state.items()}, str(blob))
    else:
        torch.save(state, blob)
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (snapshot / filename).symlink_to(blob)


def test_timm_model_on_meta_with_its_own_preprocessing_and_labels():
    loaded = resolve_model("timm/resnet18", weights="none", meta=True)
    assert loaded.source == "timm" and loaded.name == "resnet18"
    assert all(p.is_meta for p in loaded.model.parameters())
    cfg = timm.data.resolve_data_config({}, model=loaded.model)
    assert loaded.preprocess.crop == cfg["input_size"][1:]
    assert loaded.preprocess.resize == int(224 / cfg["crop_pct"])  # 235 for crop_pct 0.95
    assert loaded.preprocess.interpolation == cfg["interpolation"] == "bicubic"
    assert loaded.categories[0] == "tench" and len(loaded.categories) == 1000


def test_imagenet_22k_head_gets_22k_names():
    loaded = resolve_model("timm/vit_tiny_patch16_224.augreg_in21k", meta=True)
    assert len(loaded.categories) == loaded.model.num_classes == 21843
    assert loaded.preprocess.mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    ("spec", "text"),
    [("timm/resnet19", "resnet18"), ("timm/resnet18.a9_in1k", "a1_in1k"), ("timm/", "unknown")],
)
def test_unknown_timm_names_suggest(spec, text):
    with pytest.raises(ModelNotFoundError, match=text):
        resolve_model(spec, meta=True)


@pytest.mark.parametrize(
    "name",
    ["resnet18", "vit_small_patch16_224.augreg_in21k", "convnext_atto", "efficientnet_b0",
     "deit_tiny_patch16_224", "tf_efficientnet_lite0"],
)  # fmt: skip
@pytest.mark.parametrize("image", ["coffee.png", "rocket.jpg"])
def test_preprocessing_equals_timms_own_transform_on_real_photos(name, image):
    """timm's eval transform (create_transform) and vizcli's give the same tensor."""
    loaded = resolve_model("timm/" + name, meta=True)
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=loaded.model))
    expected = transform(load_image(SAMPLES / image))
    actual = load_tensor(SAMPLES / image, loaded.preprocess)[0]
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=0)


def test_pretrained_cfg_convention_reads_every_key():
    cfg = {"input_size": (3, 160, 160), "crop_pct": 0.8, "interpolation": "bicubic",
           "mean": (0.1, 0.2, 0.3), "std": (0.4, 0.5, 0.6)}  # fmt: skip
    preprocess = preprocess_from_cfg(cfg)
    assert preprocess.crop == (160, 160) and preprocess.resize == 200
    assert preprocess.mean == (0.1, 0.2, 0.3) and preprocess.std == (0.4, 0.5, 0.6)
    squash = preprocess_from_cfg({"crop_mode": "squash"})  # timm: 256 x 256, then crop 224
    assert (squash.resize, squash.crop_mode) == ((256, 256), "squash")


@pytest.mark.parametrize("filename", ["model.safetensors", "pytorch_model.bin"])
def test_weights_come_from_a_seeded_hub_cache(isolated_torch_home, filename):
    """The file huggingface_hub would serve is the one loaded, tensor for tensor."""
    torch.manual_seed(7)
    reference = timm.create_model("resnet18").state_dict()
    seed_hub_cache(
        isolated_torch_home / "huggingface", "timm/resnet18.a1_in1k", reference, filename
    )
    loaded = resolve_model("timm/resnet18", weights="auto", device="cpu", offline=True)
    assert loaded.weights.kind == "timm" and loaded.weights.name == "timm/resnet18.a1_in1k"
    assert loaded.weights.path.endswith(f"snapshots/{REVISION}/{filename}")
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, reference[key]), key
    other = resolve_model("timm/resnet18.a1_in1k", weights="DEFAULT", device="cpu")
    assert torch.equal(other.model.fc.weight, reference["fc.weight"])


def test_auto_without_cache_warns_and_default_refuses_offline():
    loaded = resolve_model("timm/resnet18", weights="auto", device="cpu", offline=True)
    assert loaded.weights.kind == "random"
    assert "not in the Hugging Face hub cache" in loaded.weights.warning
    with pytest.raises(WeightsError, match="not in the Hugging Face hub cache"):
        resolve_model("timm/resnet18", weights="DEFAULT", device="cpu", offline=True)
    with pytest.raises(UsageError, match="not a timm weights choice"):
        resolve_model("timm/resnet18", weights="IMAGENET1K_V1", meta=True)


def test_checkpoint_in_safetensors_and_pth(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(3)
    reference = timm.create_model("convnext_atto").state_dict()
    save_file(reference, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": reference}, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        loaded = resolve_model("timm/convnext_atto", weights=str(tmp_path / name), device="cpu")
        assert loaded.weights.kind == "checkpoint"
        assert torch.equal(loaded.model.head.fc.weight, reference["head.fc.weight"])


def test_cli_reports_the_cached_weights_and_timm_stays_unimported_elsewhere(isolated_torch_home):
    torch.manual_seed(1)
    state = timm.create_model("resnet18").state_dict()
    hf_home = isolated_torch_home / "huggingface"
    seed_hub_cache(hf_home, "timm/resnet18.a1_in1k", state, "model.safetensors")
    result = run_subprocess(
        "summary", "timm/resnet18", "--weights", "auto", "-f", "json",
        env={"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["weights"]["kind"] == "timm" and data["weights"]["name"] == "timm/resnet18.a1_in1k"
    assert data["totals"]["params"] == sum(v.numel() for k, v in state.items() if "running" not in k
                                           and "num_batches" not in k)  # fmt: skip
    script = textwrap.dedent("""
        import sys
        from vizcli.models import resolve_model
        resolve_model("resnet18", meta=True)
        resolve_model("tests/tiny_models.py:TinyNet", meta=True)
        print("timm" in sys.modules, "huggingface_hub" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_models_lists_timm_names(cli):
    result = cli("models", "--source", "timm", "convnext_at*", "-f", "json")
    assert result.code == 0
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    assert "timm/convnext_atto" in entries
    assert entries["timm/convnext_atto"]["default_weights"] == "d2_in1k"
    assert set(entries["timm/convnext_atto"]["weights"]) == {
        t.partition(".")[2] for t in timm.list_pretrained("convnext_atto.*")
    }
