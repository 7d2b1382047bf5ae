"""``stats``' verdicts: thresholds, flags at their boundaries, the JSON row, and NaN/Inf and
shapes kept across chunks; figures against numpy/torch computed here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tests import tiny_models
from vizcli.errors import UsageError
from vizcli.stats import LayerHealth, Thresholds, _flags
from vizcli.tensorstats import RunningStats, top_class_score


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"dead_fraction": -0.01}, "--dead"),
        ({"dead_fraction": 1.01}, "--dead"),
        ({"dead_fraction": math.nan}, "--dead"),
        ({"vanishing": -1e-9}, "--vanishing"),
        ({"vanishing": math.inf}, "--vanishing"),
        ({"exploding": math.nan}, "--exploding"),
        ({"exploding": -1.0}, "--exploding"),
        ({"vanishing": 5.0, "exploding": 5.0}, "--vanishing must be below --exploding"),
        ({"vanishing": -1.0}, "--vanishing must be a finite number >= 0, got -1.0"),
        ({"exploding": math.inf}, "--exploding must be a finite number >= 0, got inf"),
    ],
)
def test_bad_thresholds_are_usage_errors_naming_the_option(kwargs, option):
    with pytest.raises(UsageError) as error:
        Thresholds(**kwargs)
    assert str(error.value).startswith(option)


@pytest.mark.parametrize(
    "kwargs",
    [{"dead_fraction": 0.0}, {"dead_fraction": 1.0}, {"vanishing": 0.0}, {"exploding": 1e30}],
)
def test_boundary_thresholds_are_accepted(kwargs):
    Thresholds(**kwargs)


def _row(values, output_grad: float | None = None) -> LayerHealth:
    row = LayerHealth("layer", "Conv2d")
    row.activations.add(torch.tensor(values, dtype=torch.float64))
    if output_grad is not None:
        row.has_output_grad = True
        row.output_grad_sq = output_grad**2
    return row


def test_flags_at_and_around_their_thresholds():
    limits = Thresholds(dead_fraction=0.9, vanishing=1e-3, exploding=10.0)
    nine_of_ten = [0.0] * 9 + [1.0]
    assert _flags(_row(nine_of_ten), limits) == []  # exactly 90%: not more than 90%
    assert _flags(_row([0.0] * 19 + [1.0]), limits) == ["dead: 95% zeros"]
    assert _flags(_row([1.0, float("nan"), float("inf"), -float("inf")]), limits) == [
        "1 NaN / 2 Inf"
    ]
    assert _flags(_row([1.0, float("inf")]), limits) == ["0 NaN / 1 Inf"]
    assert _flags(_row([1.0], output_grad=1e-3), limits) == []  # at the limit: fine
    assert _flags(_row([1.0], output_grad=9.9e-4), limits) == ["vanishing gradient (9.9e-04)"]
    assert _flags(_row([1.0], output_grad=10.0), limits) == []
    assert _flags(_row([1.0], output_grad=12.0), limits) == ["exploding gradient (1.2e+01)"]
    assert _flags(_row([1.0], output_grad=math.inf), limits) == ["exploding gradient (inf)"]
    assert _flags(_row([1.0]), limits) == []  # no gradient reached it: no verdict
    assert _flags(_row([0.0] * 10, output_grad=0.0), limits) == [
        "dead: 100% zeros",
        "vanishing gradient (0.0e+00)",
    ]


def test_row_to_dict_reports_norms_only_where_they_exist():
    row = _row([3.0, 4.0], output_grad=2.0)
    row.has_params, row.param_grad_sq = True, 9.0
    row.flags = ["x"]
    data = row.to_dict()
    assert data == {
        "name": "layer",
        "type": "Conv2d",
        "activations": row.activations.to_dict(),
        "output_grad_norm": 2.0,
        "param_grad_norm": 3.0,
        "flags": ["x"],
    }
    assert LayerHealth("a", "ReLU").to_dict()["output_grad_norm"] is None
    assert LayerHealth("a", "ReLU").to_dict()["param_grad_norm"] is None


def test_running_stats_keep_counts_and_the_first_shape_across_chunks():
    stats = RunningStats()
    first = torch.tensor([[1.0, float("inf")], [0.0, float("nan")]])
    second = torch.tensor([float("inf"), 0.0, 2.0, float("nan"), float("nan")])
    stats.add(first)
    stats.add(second)
    values = np.concatenate([first.numpy().ravel(), second.numpy()])
    data = stats.to_dict()
    finite = values[np.isfinite(values)]
    assert data == {
        "shape": [2, 2],
        "count": 9,
        "mean": pytest.approx(finite.mean()),
        "std": pytest.approx(finite.std(ddof=1)),
        "min": 0.0,
        "max": 2.0,
        "norm": pytest.approx(np.linalg.norm(finite)),
        "zero_fraction": pytest.approx(2 / 9),
        "nan": 3,
        "inf": 2,
    }
    one = RunningStats()
    one.add(torch.tensor([7.0]))
    assert (one.std, one.mean) == (0.0, 7.0)


def test_top_class_score_is_the_sum_of_each_samples_largest_score():
    logits = torch.tensor([[1.0, 5.0, -2.0], [-1.0, -3.0, -0.5]])
    assert float(top_class_score(logits)) == pytest.approx(5.0 - 0.5)
    tokens = torch.arange(24.0).view(2, 3, 4)  # flattened per sample
    assert float(top_class_score(tokens)) == pytest.approx(11.0 + 23.0)
    assert float(top_class_score((logits, "aux"))) == pytest.approx(4.5)


def test_layers_without_parameters_have_no_parameter_norm(tmp_path):
    from PIL import Image

    from vizcli.stats import layer_health

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 3, 8, 8))
    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)).save(path)
    loaded = tiny_models.loaded(model)
    layers = {"0": model[0], "1": model[1], "3": model[3]}
    emitted = []
    rows = {r.name: r for r in layer_health(loaded, [path] * 3, layers, emitted.append)}
    assert rows["1"].param_grad_norm is None and rows["0"].param_grad_norm > 0
    # three images, each with the same top class: the gradient is three times one image's
    one = {r.name: r for r in layer_health(loaded, [path], layers, lambda a: None)}
    assert rows["3"].param_grad_norm == pytest.approx(3 * one["3"].param_grad_norm, rel=1e-6)
    assert rows["3"].output_grad_norm == pytest.approx(
        math.sqrt(3) * one["3"].output_grad_norm, rel=1e-6
    )
    assert {a.tag for a in emitted} >= {"stats/0/param_grad_norm", "stats/1/output_grad_norm"}
    assert "stats/1/param_grad_norm" not in {a.tag for a in emitted}


class _WithUnusedHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)
        self.unused = nn.Linear(2, 2)  # never called: its gradient does not exist

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3))


def _loaded(model: nn.Module):
    return tiny_models.loaded(model)


def test_hist_without_an_image_has_weights_only(tmp_path):
    from vizcli.hist import parameter_histograms

    torch.manual_seed(0)
    model = _WithUnusedHead()
    emitted = []
    rows = parameter_histograms(_loaded(model), None, emitted.append)
    assert [a.tag for a in emitted] == [f"weights/{n}" for n, _ in model.named_parameters()]
    assert all(row.grads is None for row in rows)
    for row, (name, param) in zip(rows, model.named_parameters(), strict=True):
        data = row.to_dict()
        assert data["name"] == name and data["grads"] is None
        assert data["weights"]["std"] == pytest.approx(float(param.detach().double().std()))


def test_hist_gradients_exist_only_for_parameters_the_score_uses(tmp_path):
    from PIL import Image

    from vizcli.hist import parameter_histograms

    torch.manual_seed(0)
    model = _WithUnusedHead()
    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (8, 8, 3), np.uint8)).save(path)
    emitted = []
    rows = {r.name: r.to_dict() for r in parameter_histograms(_loaded(model), path, emitted.append)}
    assert rows["unused.weight"]["grads"] is None and rows["unused.bias"]["grads"] is None
    assert {a.tag for a in emitted if a.tag.startswith("grads/")} == {
        "grads/conv.weight",
        "grads/conv.bias",
    }
    # the top class score's gradient, by hand: d max_k mean(conv_k) / d bias = 1 for that k
    bias_grads = rows["conv.bias"]["grads"]
    assert (bias_grads["min"], bias_grads["max"], bias_grads["zero_fraction"]) == (0.0, 1.0, 0.5)
    assert not model.conv.weight.requires_grad or model.conv.weight.grad is None


def test_hist_of_a_model_without_parameters_is_empty(tmp_path):
    from PIL import Image

    from vizcli.hist import parameter_histograms

    path = tmp_path / "x.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    emitted = []
    assert parameter_histograms(_loaded(nn.Flatten()), path, emitted.append) == []
    assert emitted == []


class _WithContainer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.spare = nn.Linear(4, 4)  # chosen, but the score never uses it
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x).mean((2, 3)))


def test_stats_rows_types_own_parameters_unused_layers_and_progress(tmp_path):
    from PIL import Image

    from vizcli.stats import layer_health

    torch.manual_seed(0)
    model = _WithContainer()
    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (8, 8, 3), np.uint8)).save(path)
    layers = {"block": model.block, "block.0": model.block[0], "spare": model.spare}
    ticks = []
    rows = {
        r.name: r
        for r in layer_health(
            _loaded(model), [path] * 9, layers, lambda a: None, progress=ticks.append
        )
    }
    assert ticks == [8, 1]  # batches of 8 by default
    assert [rows[n].type for n in layers] == ["Sequential", "Conv2d", "Linear"]
    assert rows["block"].param_grad_norm is None  # a container's own parameters: none
    assert rows["block.0"].param_grad_norm > 0
    assert rows["spare"].param_grad_norm == 0.0 and rows["spare"].output_grad_norm is None
    relus = layer_health(_loaded(model), [path], {"block.1": model.block[1]}, lambda a: None)
    assert relus[0].param_grad_norm is None and relus[0].output_grad_norm > 0
    free = nn.Sequential(nn.AvgPool2d(2), nn.Flatten())
    (row,) = layer_health(_loaded(free), [path], {"0": free[0]}, lambda a: None)
    assert row.activations.count == 3 * 4 * 4
    assert row.output_grad_norm == 1.0  # the top score is one of its outputs: gradient 1
