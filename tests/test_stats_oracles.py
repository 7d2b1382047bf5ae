"""Running statistics against numpy, on random and adversarial data, in any chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vizcli.tensorstats import RunningStats

RNG = np.random.default_rng(0)
DATASETS = {
    "normal": RNG.normal(0.3, 2.0, 10_000),
    "constant": np.full(5_000, 7.25),
    "large mean, small spread": 1e9 + RNG.normal(0, 1, 10_000),
    "float32's largest magnitudes": (RNG.normal(0, 1, 1_000) * 1e37).astype(np.float32),
    "float32's smallest magnitudes": (RNG.normal(0, 1, 1_000) * 1e-37).astype(np.float32),
    "relu-like (many zeros)": np.maximum(RNG.normal(0, 1, 10_000), 0),
    "single value": np.array([3.0]),
}


def numpy_oracle(values: np.ndarray) -> dict[str, float]:
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    scale = np.abs(finite).max() if finite.size else 0.0
    return {
        "mean": float(np.mean(finite)),
        "std": float(np.std(finite, ddof=1)) if finite.size > 1 else 0.0,
        "min": float(finite.min()),
        "max": float(finite.max()),
        "norm": float(scale * np.linalg.norm(finite / scale)) if scale else 0.0,
        "zero_fraction": float(np.mean(values == 0)),
        "nan": int(np.isnan(values).sum()),
        "inf": int(np.isinf(values).sum()),
    }


def streamed(values: np.ndarray, cuts: list[int]) -> RunningStats:
    stats = RunningStats()
    for chunk in np.split(values, sorted(set(cuts))):
        stats.add(torch.from_numpy(chunk.copy()))  # float32 stays float32, as activations are
    return stats


def assert_matches(stats: RunningStats, expected: dict[str, float]) -> None:
    got = stats.to_dict()
    for key in ("mean", "std", "min", "max", "norm"):
        assert got[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-300), key
    assert got["zero_fraction"] == pytest.approx(expected["zero_fraction"])
    assert (got["nan"], got["inf"]) == (expected["nan"], expected["inf"])


@pytest.mark.parametrize("name", list(DATASETS))
def test_equals_numpy_one_shot_and_in_uneven_chunks(name):
    values = DATASETS[name]
    expected = numpy_oracle(values)
    assert_matches(streamed(values, []), expected)
    if len(values) > 10:
        assert_matches(streamed(values, [1, 2, 3, 997, len(values) - 1]), expected)


def test_nan_and_inf_are_counted_and_left_out():
    values = np.concatenate([RNG.normal(0, 1, 100), [np.nan, np.inf, -np.inf, np.nan]])
    stats = streamed(values, [50, 101])
    assert_matches(stats, numpy_oracle(values))
    assert stats.count == 104 and stats.finite_count == 100


def test_matches_torch_std_mean_and_vector_norm():
    x = torch.randn(4, 8, 16, 16, dtype=torch.float64) * 3 + 1
    stats = RunningStats()
    for part in x.split(3, dim=1):
        stats.add(part)
    std, mean = torch.std_mean(x)
    assert stats.mean == pytest.approx(float(mean), rel=1e-12)
    assert stats.std == pytest.approx(float(std), rel=1e-12)
    assert stats.norm == pytest.approx(float(torch.linalg.vector_norm(x)), rel=1e-12)


def test_empty_and_all_nan_are_null_not_errors():
    stats = RunningStats()
    assert stats.to_dict()["mean"] is None
    stats.add(torch.tensor([float("nan")] * 3))
    data = stats.to_dict()
    assert data["mean"] is None and data["std"] is None and data["nan"] == 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=200),
    st.lists(st.integers(0, 200), max_size=6),
)
def test_any_chunking_gives_the_one_shot_figures(values, cuts):
    data = np.array(values, dtype=np.float64)
    one = streamed(data, []).to_dict()
    many = streamed(data, [c for c in cuts if c < len(data)]).to_dict()
    for key in ("mean", "std", "min", "max", "norm", "zero_fraction"):
        assert many[key] == pytest.approx(one[key], rel=1e-9, abs=1e-9), key
    assert math.isclose(one["std"], float(np.std(data, ddof=1)), rel_tol=1e-7, abs_tol=1e-7)
