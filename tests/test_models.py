"""Model and weights resolution, checked against the files and modules it should load."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY
from tests.tiny_models import OtherNet, TinyNet
from vizcli.errors import (
    EXIT_USAGE,
    ModelNotFoundError,
    ModelRunError,
    UsageError,
    WeightsError,
)
from vizcli.models import (
    cached_weights_path,
    list_model_entries,
    resolve_device,
    resolve_model,
)


def test_torchvision_model_on_meta_without_weights():
    loaded = resolve_model("resnet18", weights="none", device="cpu", meta=True)
    assert loaded.source == "torchvision" and loaded.task == "classification"
    assert all(p.is_meta for p in loaded.model.parameters())
    assert loaded.weights.kind == "random" and not loaded.weights.pretrained
    assert loaded.categories is not None and len(loaded.categories) == 1000
    assert loaded.default_input_shapes == [(1, 3, 224, 224)]
    assert not loaded.model.training


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("resnet19")
    assert "resnet18" in str(info.value)
    assert info.value.exit_code == EXIT_USAGE


@pytest.fixture
def cached_squeezenet(isolated_torch_home):
    """A state dict saved where torchvision expects SqueezeNet1_1's DEFAULT file."""
    from torchvision.models import SqueezeNet1_1_Weights, squeezenet1_1

    torch.manual_seed(123)
    reference = squeezenet1_1().state_dict()
    path = cached_weights_path(SqueezeNet1_1_Weights.DEFAULT)
    assert path == isolated_torch_home / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    return reference, path


@pytest.mark.parametrize(
    "weights", ["DEFAULT", "IMAGENET1K_V1", "imagenet1k_v1", "SqueezeNet1_1_Weights.IMAGENET1K_V1"]
)
def test_pretrained_weights_come_from_the_hub_cache(cached_squeezenet, weights):
    reference, path = cached_squeezenet
    loaded = resolve_model("squeezenet1_1", weights=weights, device="cpu", offline=True)
    assert loaded.weights.kind == "torchvision"
    assert loaded.weights.name == "SqueezeNet1_1_Weights.IMAGENET1K_V1"
    assert loaded.weights.path == str(path)
    state = loaded.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.items())


def test_auto_uses_the_cache_when_present(cached_squeezenet):
    reference, _ = cached_squeezenet
    loaded = resolve_model("squeezenet1_1", weights="auto", device="cpu", offline=True)
    assert loaded.weights.pretrained and loaded.weights.warning is None
    key = "features.0.weight"
    assert torch.equal(loaded.model.state_dict()[key], reference[key])


def test_auto_falls_back_to_random_with_a_warning_when_offline():
    loaded = resolve_model("squeezenet1_1", weights="auto", device="cpu", offline=True)
    assert loaded.weights.kind == "random"
    assert "not in the torch hub cache" in loaded.weights.warning


def test_strict_weights_fail_clearly_when_not_cached():
    with pytest.raises(WeightsError, match="not in the torch hub cache"):
        resolve_model("squeezenet1_1", weights="DEFAULT", offline=True)


def test_unknown_weights_name_is_a_usage_error():
    with pytest.raises(UsageError, match="IMAGENET1K_V1"):
        resolve_model("resnet18", weights="IMAGENET1K_V9")


def test_none_builds_detection_models_without_fetching_a_backbone():
    loaded = resolve_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights="none", meta=True)
    assert loaded.weights.kind == "random" and loaded.task == "detection"


def test_hub_files_are_loaded_with_weights_only(cached_squeezenet, tmp_path):
    """A poisoned cache file must not run code: torchvision itself passes weights_only=False."""
    _, path = cached_squeezenet
    marker = tmp_path / "pwned"
    path.write_bytes(_malicious_pickle(marker))
    with pytest.raises(WeightsError):
        resolve_model("squeezenet1_1", weights="DEFAULT", offline=True)
    assert not marker.exists()


# --------------------------------------------------------------------- checkpoints


def _tiny_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return TinyNet().state_dict()


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module_prefix"])
def test_checkpoint_files_load_in_common_layouts(tmp_path, wrap):
    state = _tiny_state(7)
    payload = {
        "plain": state,
        "state_dict": {"state_dict": state, "epoch": 3},
        "model": {"model": state},
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
    }[wrap]
    path = tmp_path / "ckpt.pth"
    torch.save(payload, path)
    loaded = resolve_model(f"{TINY}:TinyNet", weights=str(path), device="cpu")
    assert loaded.weights.kind == "checkpoint" and loaded.weights.path == str(path)
    assert torch.equal(loaded.model.fc.weight, state["fc.weight"])


def test_checkpoint_for_another_architecture_names_the_keys(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(OtherNet().state_dict(), path)
    with pytest.raises(WeightsError) as info:
        resolve_model(f"{TINY}:TinyNet", weights=str(path))
    message = str(info.value)
    assert "missing keys" in message and "features.0.weight" in message
    assert "unexpected keys" in message and "body.weight" in message
    assert "shape mismatches" in message and "fc.weight" in message


def test_checkpoint_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello, I am text")
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        resolve_model(f"{TINY}:TinyNet", weights=str(path))


def _malicious_pickle(marker: Path) -> bytes:
    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    return pickle.dumps({"weight": Exploit()})


def test_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(_malicious_pickle(marker))
    with pytest.raises(WeightsError, match="refused"):
        resolve_model(f"{TINY}:TinyNet", weights=str(path))
    assert not marker.exists()


def test_missing_checkpoint_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="checkpoint not found"):
        resolve_model(f"{TINY}:TinyNet", weights=str(tmp_path / "nope.pth"))


def test_torchvision_model_takes_a_checkpoint(tmp_path):
    from torchvision.models import squeezenet1_1

    torch.manual_seed(5)
    state = squeezenet1_1(num_classes=1000).state_dict()
    path = tmp_path / "sq.pth"
    torch.save({"state_dict": state}, path)
    loaded = resolve_model("squeezenet1_1", weights=str(path), device="cpu")
    assert torch.equal(loaded.model.state_dict()["features.0.weight"], state["features.0.weight"])


# --------------------------------------------------------------------- factories


def test_factory_from_a_file_path():
    loaded = resolve_model(f"{TINY}:tiny_net", device="cpu")
    assert type(loaded.model).__name__ == "TinyNet" and loaded.source == "factory"
    assert loaded.weights.kind == "factory" and loaded.weights.pretrained
    assert "no weights that vizcli saw" in loaded.weights.warning


def test_factory_from_a_module_path():
    loaded = resolve_model("tests.tiny_models:TinyNet", device="cpu", meta=True)
    assert all(p.is_meta for p in loaded.model.parameters())


@pytest.mark.parametrize(
    ("spec", "error", "text"),
    [
        (f"{TINY}:TinyNett", ModelNotFoundError, "TinyNet"),
        ("no_such_module_xyz:f", ModelNotFoundError, "cannot import module"),
        ("missing/file.py:f", ModelNotFoundError, "model file not found"),
        (f"{TINY}:not_a_model", UsageError, "not a torch.nn.Module"),
        (f"{TINY}:broken_factory", ModelRunError, "factory exploded"),
    ],
)
def test_factory_errors(spec, error, text):
    with pytest.raises(error, match=text):
        resolve_model(spec)


def test_factory_refuses_torchvision_weight_names():
    with pytest.raises(UsageError, match="factory model"):
        resolve_model(f"{TINY}:TinyNet", weights="DEFAULT")


# --------------------------------------------------------------------- devices and listing


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(UsageError):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA"):
            resolve_device("cuda")


def test_model_listing_filters_by_task_and_pattern():
    detection = list_model_entries(task="detection")
    assert detection and all(e.task == "detection" for e in detection)
    resnets = list_model_entries("resnet*", task="classification")
    names = [e.name for e in resnets]
    assert "resnet50" in names and all(n.startswith("resnet") for n in names)
    resnet50 = next(e for e in resnets if e.name == "resnet50")
    assert resnet50.weights == ["IMAGENET1K_V1", "IMAGENET1K_V2"]
    assert resnet50.default_weights == "IMAGENET1K_V2"
    with pytest.raises(UsageError):
        list_model_entries(task="poetry")


def test_inputs_go_where_the_parameters_are():
    """A factory may place its model itself; a model without parameters takes the device
    asked for."""
    from tests.tiny_models import ParamFree, loaded

    on_meta = loaded(TinyNet().to("meta"))
    assert on_meta.input_device == torch.device("meta") != on_meta.device
    free = loaded(ParamFree())
    free.device = torch.device("meta")
    assert free.input_device == torch.device("meta")


def test_model_and_weights_errors_word_for_word(tmp_path):
    """One line each: what is wrong and what to do, with the user's own names in it."""
    import io
    import zipfile

    from vizcli.errors import WeightsUsageError
    from vizcli.models.checkpoints import load_checkpoint_into, read_state_dict
    from vizcli.models.loaded import WeightsInfo

    def message(call, kind=Exception) -> str:
        with pytest.raises(kind) as caught:
            call()
        return str(caught.value)

    assert message(lambda: read_state_dict("https://host/w.pth"), WeightsUsageError) == (
        "--weights takes a local file, not a URL: https://host/w.pth "
        "(download it first (curl -LO URL), then pass the file)"
    )
    wrong = tmp_path / "wrong.pth"
    torch.save({"other": torch.zeros(2)}, wrong)
    assert message(lambda: load_checkpoint_into(TinyNet(), str(wrong)), WeightsError) == (
        f"checkpoint {wrong} does not fit TinyNet: 4 missing keys (e.g. features.0.weight, "
        "features.0.bias, fc.weight), 1 unexpected keys (e.g. other) "
        "(was it saved from another architecture?)"
    )
    buffer = io.BytesIO()
    torch.save(TinyNet().state_dict(), buffer)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert message(lambda: read_state_dict(str(cut)), WeightsError) == (
        f"{cut} is not a PyTorch checkpoint: File is not a zip file"
    )
    bomb = tmp_path / "bomb.pth"  # 80 MB of zeros deflated to a few hundred kB
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/data.pkl", bytes(80 << 20))
    size = bomb.stat().st_size / 1e6
    assert message(lambda: read_state_dict(str(bomb)), WeightsError) == (
        f"{bomb} ({size:.1f} MB) would inflate to 0.1 GB in memory; refused "
        "(torch.save writes tensors uncompressed; raise VIZCLI_MAX_CHECKPOINT_GB if real)"
    )
    assert message(lambda: resolve_device("meta"), UsageError) == (
        "unsupported device 'meta' (use auto, cpu, cuda or mps)"
    )
    assert message(lambda: resolve_model(f"{TINY}:", weights="none")) == (
        f"bad model spec '{TINY}:' (use module:factory or path/to/file.py:factory)"
    )
    tags = message(lambda: resolve_model("timm/resnet18.zzzzz", weights="none"))
    assert tags.startswith("timm has no pretrained tag 'zzzzz' for resnet18 (tags: ")
    assert "tv_in1k" in tags and tags.endswith(")")
    bare = message(lambda: resolve_model("timm/botnet50ts_256.zzz", weights="none"))
    assert bare == "timm has no pretrained tag 'zzz' for botnet50ts_256"  # it has no tags at all
    assert WeightsInfo("auto", "factory").describe() == "as built by the factory"
    assert WeightsInfo("auto", "factory", name="v2").describe() == "as built by the factory (v2)"


def test_checkpoint_size_limits_and_format_sniffing_at_their_edges(tmp_path, monkeypatch):
    """A file exactly at VIZCLI_MAX_CHECKPOINT_GB is read, one byte over is refused; a
    safetensors header length of 2**28 bytes or more is not taken for safetensors."""
    import re

    from vizcli.models.checkpoints import _is_safetensors, read_state_dict

    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 1000)
    monkeypatch.setenv("VIZCLI_MAX_CHECKPOINT_GB", "0.000001")  # 1000 bytes
    with pytest.raises(WeightsError, match="unrecognised file format"):
        read_state_dict(str(path))  # at the limit: read, and found not to be a checkpoint
    path.write_bytes(b"x" * 1001)
    with pytest.raises(WeightsError, match=re.escape("is 0.0 GB, over the 0 GB limit")):
        read_state_dict(str(path))
    just_below = ((1 << 28) - 1).to_bytes(8, "little") + b"{"
    at_limit = (1 << 28).to_bytes(8, "little") + b"{"
    assert _is_safetensors(tmp_path / "w.bin", just_below)
    assert not _is_safetensors(tmp_path / "w.bin", at_limit)
    assert not _is_safetensors(tmp_path / "w.bin", just_below[:8])  # too short to tell


def test_timm_errors_offline_and_without_timm(monkeypatch):
    import re
    import sys

    sentence = r"timm/resnet18\.\w+ is not in the Hugging Face hub cache and --offline is set"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub's own switch counts as --offline
    monkeypatch.setenv("VIZCLI_OFFLINE", "0")
    loaded = resolve_model("timm/resnet18", weights="auto", device="cpu")
    assert re.fullmatch(sentence + "; using random init", loaded.weights.warning)
    with pytest.raises(WeightsError) as caught:
        resolve_model("timm/resnet18", weights="DEFAULT", device="cpu")
    assert re.fullmatch(
        sentence + r" \(copy the weights into HF_HOME, or use --weights none\)", str(caught.value)
    )
    monkeypatch.setitem(sys.modules, "timm", None)  # as if it were not installed
    with pytest.raises(UsageError) as caught:
        resolve_model("timm/resnet18", weights="none", meta=True)
    assert str(caught.value) == "timm models need timm (pip install timm)"


def test_pretrained_googlenet_is_built_as_its_weights_require(isolated_torch_home):
    """GoogLeNet's published weights expect ``transform_input=True`` (and aux heads in the
    file): vizcli builds it as ``googlenet(weights=...)`` does, from a seeded hub cache."""
    from torchvision.models import GoogLeNet_Weights, googlenet

    torch.manual_seed(0)
    reference = googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()
    path = cached_weights_path(GoogLeNet_Weights.DEFAULT)
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    loaded = resolve_model("googlenet", weights="DEFAULT", device="cpu", offline=True)
    assert loaded.weights.kind == "torchvision" and loaded.weights.path == str(path)
    assert loaded.model.transform_input is True and loaded.model.aux_logits is False
    assert len(loaded.categories) == 1000 and loaded.categories[0] == "tench"
    state = loaded.model.state_dict()
    assert all(torch.equal(state[k], reference[k]) for k in state)


def test_no_weights_still_shows_the_published_architecture():
    """``--weights none`` builds what ``DEFAULT`` would load into (GoogLeNet without its aux
    heads, with its input transform), only with random values."""
    loaded = resolve_model("googlenet", weights="none", device="cpu")
    assert loaded.model.transform_input is True and loaded.model.aux_logits is False
    assert loaded.model.aux1 is None and loaded.weights.kind == "random"


@pytest.mark.parametrize("weights", ["auto", "DEFAULT"])
def test_missing_weights_are_downloaded_to_the_hub_cache_path(
    isolated_torch_home, monkeypatch, weights
):
    """Online, a file not in the cache is fetched from the weights' own URL to the path torch
    hub uses, then loaded (the server is stood in for by writing the file)."""
    from torchvision.models import SqueezeNet1_1_Weights, squeezenet1_1

    from vizcli.models import download

    torch.manual_seed(5)
    reference = squeezenet1_1().state_dict()
    fetched = []

    def fake_download(url: str, path: Path, what: str) -> None:
        fetched.append((url, path, what))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(reference, path)

    monkeypatch.setattr(download, "download", fake_download)
    monkeypatch.setenv("VIZCLI_OFFLINE", "0")
    loaded = resolve_model("squeezenet1_1", weights=weights, device="cpu")
    member = SqueezeNet1_1_Weights.DEFAULT
    assert fetched == [(member.url, cached_weights_path(member), str(member))]
    assert loaded.weights.kind == "torchvision"
    assert torch.equal(loaded.model.state_dict()["classifier.1.weight"],
                       reference["classifier.1.weight"])  # fmt: skip


def test_timm_hands_the_download_timeout_to_the_hub(monkeypatch):
    from vizcli.models.timm import _timm

    monkeypatch.setenv("VIZCLI_DOWNLOAD_TIMEOUT", "7")
    monkeypatch.delenv("HF_HUB_ETAG_TIMEOUT", raising=False)
    monkeypatch.delenv("HF_HUB_DOWNLOAD_TIMEOUT", raising=False)
    _timm()
    assert os.environ["HF_HUB_ETAG_TIMEOUT"] == os.environ["HF_HUB_DOWNLOAD_TIMEOUT"] == "7"
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "3")  # the user's own setting wins
    _timm()
    assert os.environ["HF_HUB_ETAG_TIMEOUT"] == "3"


def test_a_zip_that_is_no_torch_file_is_named(tmp_path):
    import zipfile

    from vizcli.models.checkpoints import read_state_dict

    path = tmp_path / "notes.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")
    with pytest.raises(WeightsError) as caught:
        read_state_dict(str(path))
    assert str(caught.value).startswith(f"{path} is not a PyTorch checkpoint: ")
    assert "hasRecord" in str(caught.value)  # torch's own words: the record it looked for


def test_a_forward_that_needs_two_images_is_refused_before_any_work():
    from vizcli.models.loaded import LoadedModel, WeightsInfo

    class Flow(torch.nn.Module):
        def forward(self, *frames):  # optical flow: two frames, taken as *args
            return frames[0] - frames[1]

    class Pair(torch.nn.Module):
        def forward(self, left, right, scale=1.0):
            return (left - right) * scale

    def loaded(model, task):
        return LoadedModel(model, "my.py:net", "net", "factory", task,
                           WeightsInfo("auto", "factory"), torch.device("cpu"), None)  # fmt: skip

    hint = "('vizcli summary' and 'vizcli graph' take several --input shapes)"
    with pytest.raises(UsageError) as caught:
        loaded(Flow(), "optical_flow").require_single_input("fmaps")
    assert str(caught.value) == (
        "my.py:net's forward takes 2 inputs (two images); fmaps feeds it one batch of images "
        + hint
    )
    with pytest.raises(UsageError) as caught:
        loaded(Pair(), "classification").require_single_input("cam")
    assert str(caught.value) == (
        "my.py:net's forward takes 2 inputs (left, right); cam feeds it one batch of images " + hint
    )
    loaded(TinyNet(), "classification").require_single_input("cam")  # one input: fine
