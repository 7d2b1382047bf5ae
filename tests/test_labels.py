"""Class names: files and JSON in every accepted shape, each refusal with its message, the
named lists against torchvision's and timm's own, and names a model's cfg declares."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from vizcli.errors import UsageError
from vizcli.labels import labels_from_cfg, load_labels


def _write(path, text: str, encoding: str = "utf-8"):
    path.write_text(text, encoding=encoding)
    return str(path)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.txt", "cat\n dog \n\n", ["cat", "dog"]),  # trailing blank lines dropped, stripped
        ("b.txt", "cat\n\ndog\n", ["cat", "", "dog"]),  # a blank inside keeps its index
        ("c.txt", "\ufeffcat\r\ndog", ["cat", "dog"]),  # BOM and CRLF
        ("d.json", '["x", "y"]', ["x", "y"]),
        ("e.txt", '  ["x", "y"]', ["x", "y"]),  # JSON by its first character
        ("f.json", '{"1": "one", "0": "zero"}', ["zero", "one"]),
        ("g.json", '{"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"]}',
         ["tench", "goldfish"]),  # Keras' imagenet_class_index.json
    ],
)  # fmt: skip
def test_label_files(tmp_path, name, text, expected):
    assert load_labels(_write(tmp_path / name, text)) == expected


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.txt", "\n\n", "is empty"),
        ("bad.json", "[1, 2", "is not valid JSON"),
        ("nums.json", "[1, 2]", "must hold a list of names or an index->name object"),
        ("emptylist.json", "[]", "must hold a list of names"),
        ("emptymap.json", "{}", "must hold a list of names"),
        ("keys.json", '{"a": "x"}', "keys must be class indices"),
        ("emptyvalue.json", '{"0": []}', "keys must be class indices"),
        ("gap.json", '{"0": "x", "2": "y"}', "indices must be 0..1"),
        ("scalar.json", "3", "must hold a list of names"),
    ],
)
def test_label_file_refusals(tmp_path, name, text, message):
    path = _write(tmp_path / name, text)
    with pytest.raises(UsageError) as error:
        load_labels(path)
    assert message in str(error.value) and path in str(error.value)


def test_unreadable_and_missing_files(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="labels file not found") as error:
        load_labels(str(tmp_path / "none.txt"))
    assert "imagenet" in error.value.hint
    with pytest.raises(UsageError, match="labels file not found"):
        load_labels(str(tmp_path))  # a folder is not a file
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(UsageError, match="cannot read labels file .*latin.txt"):
        load_labels(str(latin))
    import vizcli.labels

    monkeypatch.setattr(vizcli.labels, "MAX_LABELS_BYTES", 10)
    with pytest.raises(UsageError, match="larger than 64 MB"):
        load_labels(_write(tmp_path / "big.txt", "x\n" * 6))
    assert load_labels(_write(tmp_path / "ok.txt", "x\n" * 5)) == ["x"] * 5


@pytest.mark.parametrize("alias", ["imagenet", "IMAGENET1K", " in1k ", "imagenet-1k"])
def test_imagenet_is_torchvisions_list(alias):
    from torchvision.models import ResNet18_Weights

    assert load_labels(alias) == ResNet18_Weights.IMAGENET1K_V1.meta["categories"]


@pytest.mark.parametrize(("subset", "count"), [("imagenet-22k", 21841), ("imagenet-12k", 11821)])
def test_timm_subsets_are_timms_own_first_names(subset, count):
    from timm.data import ImageNetInfo

    names = load_labels(subset.upper())
    info = ImageNetInfo(subset)
    assert len(names) == count == info.num_classes()
    for index in (0, 1, count // 2, count - 1):
        assert names[index] == info.index_to_description(index).split(",")[0].strip()
        assert "," not in names[index]


def test_timm_missing_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_timm(name, *args, **kwargs):
        if name.startswith("timm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_timm)
    with pytest.raises(UsageError, match="--labels imagenet-22k needs timm") as error:
        load_labels("imagenet-22k")
    assert error.value.hint == "pip install timm"


def test_names_declared_in_a_cfg(tmp_path):
    from torchvision.models import ResNet18_Weights

    assert labels_from_cfg(None) is None
    assert labels_from_cfg({}) is None
    assert labels_from_cfg({"label_names": []}) is None
    assert labels_from_cfg({"label_names": 3}) is None
    assert labels_from_cfg({"label_names": ("a", 2)}) == ["a", "2"]
    imagenet = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert labels_from_cfg({"label_names": "imagenet"}) == imagenet
    path = _write(tmp_path / "n.json", json.dumps(["p", "q"]))
    assert labels_from_cfg(SimpleNamespace(label_names=path)) == ["p", "q"]
    with_to_dict = SimpleNamespace(to_dict=lambda: {"label_names": ["z"]})
    assert labels_from_cfg(with_to_dict) == ["z"]
