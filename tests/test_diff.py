"""``vizcli diff``: architecture and weights of two models compared, checked on changes the
tests make themselves (known layers, known amounts) and on torchvision's own model families."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.conftest import TINY, run_subprocess
from vizcli.diff import architecture_diff, compare, weights_diff
from vizcli.errors import UsageError


@pytest.fixture(scope="module")
def resnets():
    return compare("resnet18", "resnet34")


def test_resnet34_is_resnet18_with_eight_more_blocks(resnets):
    """torchvision builds [2, 2, 2, 2] and [3, 4, 6, 3] BasicBlocks: 1 + 2 + 4 + 1 added."""
    import torchvision

    arch = resnets.architecture
    assert [a["name"] for a in arch.added] == [
        "layer1.2", "layer2.2", "layer2.3", "layer3.2", "layer3.3", "layer3.4", "layer3.5",
        "layer4.2",
    ]  # fmt: skip
    assert {a["type"] for a in arch.added} == {"BasicBlock"} and not arch.removed
    assert not arch.changed and not arch.renamed
    small, large = torchvision.models.resnet18(), torchvision.models.resnet34()
    for item in arch.added:
        block = large.get_submodule(item["name"])
        assert item["params"] == sum(p.numel() for p in block.parameters())
        assert item["layers"] == len(list(block.modules()))
    count = [sum(p.numel() for p in m.parameters()) for m in (small, large)]
    assert arch.totals["params"] == count
    assert sum(a["params"] for a in arch.added) == count[1] - count[0]


def test_an_inserted_layer_shifts_the_rest_without_losing_them():
    result = compare(f"{TINY}:stack", f"{TINY}:stack_inserted", inputs=["1,3,16,16"])
    arch = result.architecture
    assert [(a["name"], a["type"], a["params"]) for a in arch.added] == [("1", "BatchNorm2d", 16)]
    assert arch.removed == [] and arch.renamed == [["1", "2"]]
    changed = {c.name: (c.old_name, c.fields) for c in arch.changed}
    assert changed["3"] == ("2", {"output_shape": [[1, 16, 16, 16], [1, 24, 16, 16]],
                                  "params": [8 * 16 * 9 + 16, 8 * 24 * 9 + 24],
                                  "mult_adds": [8 * 16 * 9 * 256, 8 * 24 * 9 * 256]})  # fmt: skip
    assert changed["6"] == ("5", {"params": [16 * 4 + 4, 24 * 4 + 4], "mult_adds": [64, 96]})
    assert set(changed) == {"3", "4", "5", "6"}


def test_the_same_model_has_no_changes():
    result = compare(f"{TINY}:stack", inputs=["1,3,16,16"])
    assert result.architecture.same and result.weights is None
    assert result.architecture.totals["params"] == [1460, 1460]


def _summary(layers, params=0):
    rows = [{"name": "", "type": "Net", "depth": 0, "is_leaf": False, "output_shape": [1, 2],
             "params": params, "mult_adds": 0}]  # fmt: skip
    for name, kind, count in layers:
        rows.append({"name": name, "type": kind, "depth": name.count(".") + 1, "is_leaf": True,
                     "output_shape": [1, 2], "params": count, "mult_adds": 0})  # fmt: skip
    return {"layers": rows, "totals": {"params": params}}


def test_a_renamed_layer_is_renamed_and_a_retyped_one_is_replaced():
    a = _summary([("stem", "Conv2d", 10), ("head", "Linear", 5), ("act", "ReLU", 0)])
    b = _summary([("stem", "Conv2d", 10), ("classifier", "Linear", 5), ("act", "GELU", 0)])
    arch = architecture_diff(a, b)
    assert arch.renamed == [["head", "classifier"]]
    assert [r["name"] for r in arch.removed] == ["act"] and arch.removed[0]["type"] == "ReLU"
    assert [(r["name"], r["type"]) for r in arch.added] == [("act", "GELU")]


def test_a_module_called_twice_pairs_call_by_call():
    a = _summary(
        [("block.relu", "ReLU", 0), ("block.conv", "Conv2d", 9), ("block.relu", "ReLU", 0)]
    )
    b = _summary([("block.relu", "ReLU", 0), ("block.conv", "Conv2d", 9)])
    arch = architecture_diff(a, b)
    assert arch.removed == [{"name": "block.relu", "type": "ReLU", "params": 0, "layers": 1}]
    assert not arch.added and not arch.changed


def _state():
    torch.manual_seed(0)
    return {
        "conv.weight": torch.randn(8, 3, 3, 3),
        "conv.bias": torch.randn(8),
        "bn.weight": torch.ones(8),
        "bn.running_mean": torch.zeros(8),
        "bn.num_batches_tracked": torch.tensor(5),
        "fc.weight": torch.randn(4, 8),
        "fc.bias": torch.zeros(4),
    }


PARAMETERS = {"conv.weight", "conv.bias", "bn.weight", "fc.weight", "fc.bias"}


def test_weights_diff_finds_exactly_the_layers_changed_by_known_amounts():
    a = _state()
    b = {k: v.clone() for k, v in a.items()}
    b["conv.weight"] *= 1.5  # relative change 0.5, cosine 1
    b["fc.weight"] = -b["fc.weight"]  # relative 2, cosine -1
    b["bn.running_mean"] += 0.25
    result = weights_diff(a, b, PARAMETERS)
    tensors = {t.name: t for t in result.tensors}
    assert tensors["conv.weight"].relative == pytest.approx(0.5)
    assert tensors["conv.weight"].cosine == pytest.approx(1.0)
    assert tensors["conv.weight"].max_abs == pytest.approx(float(a["conv.weight"].abs().max() / 2))
    assert tensors["fc.weight"].relative == pytest.approx(2.0)
    assert tensors["fc.weight"].cosine == pytest.approx(-1.0)
    assert (
        tensors["bn.running_mean"].kind == "buffer" and tensors["bn.running_mean"].relative is None
    )
    assert {t.name for t in result.tensors if not t.frozen} == {
        "conv.weight",
        "fc.weight",
        "bn.running_mean",
    }
    layers = {m.layer: m for m in result.layers}
    conv = a["conv.weight"].double()
    expected = float(
        0.5 * conv.norm() / torch.cat([conv.flatten(), a["conv.bias"].double()]).norm()
    )
    assert layers["conv"].relative == pytest.approx(expected)
    assert layers["conv"].params == 8 * 27 + 8 and not layers["conv"].frozen
    assert layers["bn"].frozen and layers["bn"].relative == 0.0
    assert [m.layer for m in result.moved_most(5)] == ["fc", "conv"]
    assert result.frozen_layers == ["bn"]


def test_nan_and_inf_introduced_are_counted():
    a = _state()
    b = {k: v.clone() for k, v in a.items()}
    b["fc.weight"][0, :3] = float("nan")
    b["conv.bias"][2] = float("inf")
    result = weights_diff(a, b, PARAMETERS)
    found = {t.name: t.new_nonfinite for t in result.new_nonfinite}
    assert found == {"fc.weight": 3, "conv.bias": 1}
    fc = next(m for m in result.layers if m.layer == "fc")
    assert fc.relative == math.inf and not fc.frozen


def test_tensors_missing_added_or_reshaped():
    a = _state()
    b = {k: v.clone() for k, v in a.items() if k != "bn.weight"}
    b["fc.weight"] = torch.zeros(5, 8)
    b["extra.weight"] = torch.zeros(2)
    result = weights_diff(a, b)
    assert result.only_in_a == ["bn.weight"] and result.only_in_b == ["extra.weight"]
    assert result.shape_mismatch == ["fc.weight"]


def test_two_checkpoints_through_the_cli(tmp_path):
    from tests.tb import read_events
    from tests.tiny_models import stack

    model = stack()
    torch.save(model.state_dict(), tmp_path / "a.pt")
    state = model.state_dict()
    state["2.weight"] = state["2.weight"] * 1.25
    torch.save(state, tmp_path / "b.pt")
    spec = f"{TINY}:stack"
    result = run_subprocess("diff", spec, "--weights-a", str(tmp_path / "a.pt"), "--weights-b",
                            str(tmp_path / "b.pt"), "-i", "1,3,16,16", "-f", "json", "--logdir",
                            str(tmp_path / "runs"), "--out", str(tmp_path / "png"))  # fmt: skip
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == "vizcli.diff/1" and data["architecture"]["changed"] == []
    moved = [m for m in data["weights"]["layers"] if not m["frozen"]]
    conv = state["2.weight"].double() / 1.25
    expected = 0.25 * float(conv.norm() / torch.cat([conv.flatten(), state["2.bias"]]).norm())
    assert [m["layer"] for m in moved] == ["2"] and moved[0]["relative"] == pytest.approx(expected)
    events = read_events(next((tmp_path / "runs").iterdir()))
    assert [e.value for e in events.Scalars("diff/relative_change")] == pytest.approx(
        [0.0, expected, 0.0]
    )
    assert (next((tmp_path / "png").iterdir()) / "diff__weights.png").is_file()


def test_markdown_for_a_pull_request(resnets):
    from vizcli.report.diff import diff_markdown

    text = diff_markdown(resnets)
    lines = text.splitlines()
    assert lines[0] == "### vizcli diff: resnet18 → resnet34"
    assert "| Parameters | 11,689,512 | 21,797,672 | +10,108,160 (+86.5%) |" in lines
    assert "| added | `layer3.5` | BasicBlock, 6 layers, 1,180,672 params |" in lines
    tables, current = [], []
    for line in [*lines, ""]:
        if line.startswith("|"):
            current.append(line.replace("\\|", "").count("|"))
        elif current:
            tables, current = [*tables, current], []
    assert [len(set(t)) for t in tables] == [1, 1] and [t[0] for t in tables] == [5, 4]


def test_saved_summaries_diff_like_the_models(tmp_path, resnets):
    for name in ("resnet18", "resnet34"):
        result = run_subprocess("summary", name, "-f", "json", "-o", str(tmp_path / f"{name}.json"))
        assert result.code == 0, result.stderr
    saved = compare(str(tmp_path / "resnet18.json"), str(tmp_path / "resnet34.json"))
    assert saved.architecture == resnets.architecture  # depth 3 holds every resnet row
    assert saved.a == {"kind": "summary", "file": str(tmp_path / "resnet18.json")}


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--weights-a", "none"], "give both --weights-a and --weights-b"),
     (["{tmp}/other.json"], "is not a vizcli summary (schema None"),
     (["{tmp}/missing.json"], "summary file not found"),
     (["{tmp}/other.json", "--weights-a", "none", "--weights-b", "none"],
      "is not a vizcli summary")],
)  # fmt: skip
def test_user_mistakes_are_one_line(cli, tmp_path, args, message):
    (tmp_path / "other.json").write_text('{"layers": []}')
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = cli("diff", f"{TINY}:stack", *args, "-i", "1,3,16,16")
    assert result.code == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert message in result.stderr and "Traceback" not in result.stderr


def test_weights_cannot_come_from_a_summary(tmp_path):
    with pytest.raises(UsageError, match="a saved summary holds no weights"):
        result = run_subprocess("summary", f"{TINY}:stack", "-i", "1,3,16,16", "-f", "json", "-o",
                                str(tmp_path / "s.json"))  # fmt: skip
        assert result.code == 0
        compare(str(tmp_path / "s.json"), f"{TINY}:stack", "none", "none", ["1,3,16,16"])


def test_a_summary_saved_at_a_depth_compares_at_that_depth(tmp_path):
    shallow = tmp_path / "shallow.json"
    made = run_subprocess("summary", "resnet18", "-f", "json", "--depth", "1", "-o", str(shallow))
    assert made.code == 0, made.stderr
    result = compare(str(shallow), "resnet18")
    assert result.architecture.same
    deeper = compare(str(shallow), "resnet34").architecture
    assert deeper.added == [] and [c.name for c in deeper.changed] == [
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]  # at depth 1 the stages are what changed (more blocks inside)
