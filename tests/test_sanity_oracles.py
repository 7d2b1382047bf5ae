"""The sanity check's figures against independent implementations: SSIM and HOG against
scikit-image, Spearman against scipy; and the cascading randomisation itself observed from
outside (which weights are re-drawn at each stage, at what scale, in which order)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch
from skimage.feature import hog
from skimage.metrics import structural_similarity
from torch import nn

from vizcli.cam import metrics


def smooth_map(seed: int, height: int, width: int, margin: int = 0) -> torch.Tensor:
    """A random smooth map in [0, 1], zero within ``margin`` pixels of the border."""
    rng = np.random.default_rng(seed)
    noise = scipy.ndimage.gaussian_filter(rng.random((height, width)), sigma=3)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    noise += 0.05 * rng.random((height, width))  # fine texture on top
    out = np.zeros((height, width))
    inner = (slice(margin, height - margin), slice(margin, width - margin))
    out[inner] = noise[inner]
    return torch.from_numpy(out / out.max())


@pytest.mark.parametrize(("sigma", "taps"), [(5.0, 11), (1.5, 11), (2.0, 7)])
def test_gaussian_blur_is_scipys_with_mirrored_borders(sigma, taps):
    image = torch.rand(
        2, 3, 29, 41, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    found = metrics.gaussian_blur(image, taps=taps, sigma=sigma)
    expected = np.stack([[scipy.ndimage.gaussian_filter(c, sigma=sigma, radius=taps // 2,
                                                        mode="mirror") for c in b]
                         for b in image.numpy()])  # fmt: skip
    np.testing.assert_allclose(found.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("size", "seeds"), [((64, 64), (0, 1)), ((45, 70), (2, 3)), ((64, 64), (4, 4))]
)
def test_ssim_is_scikit_images_gaussian_ssim(size, seeds):
    """Wang et al.'s SSIM as scikit-image computes it (11-tap Gaussian, sigma 1.5, population
    covariance, data range 1), averaged over the whole map. The maps are zero near the border,
    where the two pad differently (scikit-image then crops its border; vizcli keeps it)."""
    a, b = (smooth_map(seed, *size, margin=8) for seed in seeds)
    _, full = structural_similarity(
        a.numpy(), b.numpy(), data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, full=True,
    )  # fmt: skip
    assert metrics.ssim(a, b) == pytest.approx(float(full.mean()), abs=1e-12)
    assert metrics.ssim(a.float(), b.float()) == pytest.approx(float(full.mean()), abs=1e-6)


def test_ssim_tells_faint_maps_apart_by_its_constants():
    """Where both maps are faint, C1 and C2 decide the index: a wrong constant moves it."""
    a = smooth_map(5, 48, 48, margin=8) * 0.02
    b = smooth_map(6, 48, 48, margin=8) * 0.02
    _, full = structural_similarity(
        a.numpy(), b.numpy(), data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, full=True,
    )  # fmt: skip
    assert 0.2 < float(full.mean()) < 0.99
    assert metrics.ssim(a, b) == pytest.approx(float(full.mean()), abs=1e-12)


def skimage_hog(image: torch.Tensor) -> np.ndarray:
    """scikit-image's HOG (9 unsigned bins, 8x8 cells, one-cell L2 blocks), each cell's
    histogram normalised exactly (scikit-image adds eps = 1e-5 to the norm)."""
    cells = hog(image.numpy(), orientations=9, pixels_per_cell=(8, 8), cells_per_block=(1, 1),
                block_norm="L2", feature_vector=True).reshape(-1, 9)  # fmt: skip
    norms = np.linalg.norm(cells, axis=1, keepdims=True)
    return (cells / np.where(norms > 0, norms, 1)).ravel()


@pytest.mark.parametrize(
    ("size", "seed", "gain"), [((64, 64), 0, 1.0), ((67, 61), 1, 1.0), ((16, 40), 2, 1e-3)]
)
def test_hog_features_are_scikit_images_hog(size, seed, gain):
    """Dalal and Triggs' HOG as scikit-image computes it; incomplete cells at the right and
    bottom dropped; the similarity is the Pearson correlation of the two feature vectors."""
    image = smooth_map(seed, *size) * gain
    other = smooth_map(seed, *size) + smooth_map(seed + 10, *size)  # related, not equal
    expected = skimage_hog(image)
    found = metrics.hog_features(image)
    assert found.shape == expected.shape
    np.testing.assert_allclose(found.numpy(), expected, rtol=0, atol=1e-6)  # float32 inside
    correlation = np.corrcoef(expected, skimage_hog(other))[0, 1]
    assert metrics.hog_similarity(image, other) == pytest.approx(correlation, abs=1e-4)


def test_hog_orientations_wrap_around_at_180_degrees():
    """Unsigned orientations: an edge leaning a hair below 0 deg (which rounds to 180.0)
    falls in the first bin, with the upright edges beside it."""
    x = torch.zeros(16, 16, dtype=torch.float64)
    x[:, :7], x[:, 8:] = -1.0, 1.0
    x[:, 7] = -1e-20 * torch.arange(16, dtype=torch.float64)
    cells = metrics.hog_features(x).view(2, 2, 9)
    assert torch.equal(cells[..., 1:], torch.zeros_like(cells[..., 1:]))
    torch.testing.assert_close(cells[..., 0], torch.ones(2, 2, dtype=torch.float64))


@pytest.mark.parametrize("zeros", [0.0, 0.5, 0.9])
def test_spearman_is_scipys_with_average_ranks_for_ties(zeros):
    """scipy's Spearman, ties sharing their average rank: maps with ReLU plateaus of zeros
    (none, half, most of the pixels) and coarse values that repeat."""
    rng = np.random.default_rng(int(zeros * 10))
    for _ in range(4):
        a, b = rng.random((20, 30)), rng.random((20, 30))
        b = 0.6 * a + 0.4 * b  # correlated, not identical
        a = np.where(a < np.quantile(a, zeros), 0.0, a) if zeros else a
        b = np.round(np.where(b < np.quantile(b, zeros), 0.0, b), 1)  # zeros and repeats
        expected = scipy.stats.spearmanr(a.ravel(), b.ravel()).statistic
        found = metrics.spearman(torch.from_numpy(a), torch.from_numpy(b).float())
        assert found == pytest.approx(expected, abs=1e-9)


def test_spearman_of_two_unrelated_blobs_on_zero_is_near_zero():
    """Ranking ties by position would make any two mostly-zero maps agree (r = 0.65 here)."""
    a, b = torch.zeros(32, 32), torch.zeros(32, 32)
    a[4:10, 4:10] = torch.rand(6, 6, generator=torch.Generator().manual_seed(0)) + 0.1
    b[20:28, 18:26] = torch.rand(8, 8, generator=torch.Generator().manual_seed(1)) + 0.1
    expected = scipy.stats.spearmanr(a.ravel(), b.ravel()).statistic
    assert abs(expected) < 0.1
    assert metrics.spearman(a, b) == pytest.approx(expected, abs=1e-9)


# ------------------------------------------------------------ the randomisation, seen from outside


class Gain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor([1.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.value


class Stack(nn.Module):
    """Blocks at two depths, a parameter-free block, an all-zero block, a two-number bias
    far from its initial scale and a one-number block."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.body = nn.Sequential(nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.ReLU()),
                                  nn.ReLU(), nn.Conv2d(6, 4, 1))  # fmt: skip
        self.zeros = nn.Conv2d(4, 8, 3, padding=1)
        nn.init.zeros_(self.zeros.weight)
        nn.init.zeros_(self.zeros.bias)
        self.head = nn.Conv2d(8, 2, 3, padding=1)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([-3.0, 3.0]))
        self.gain = Gain()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(self.stem(x))
        return self.gain(self.head(self.zeros(y) + y.repeat(1, 2, 1, 1)))


class Recorder:
    """A stand-in method: the map is the model's (smooth, tie-free) output; every call records
    the batch size and a copy of the weights it saw."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.weights: list[dict[str, torch.Tensor]] = []
        self.maps: list[torch.Tensor] = []

    def __call__(self, probe, batch, classes):  # noqa: ANN001, ANN204
        self.sizes.append(len(batch))
        self.weights.append({n: p.detach().clone() for n, p in probe.model.named_parameters()})
        with torch.no_grad():
            out = probe.model(batch)[:, 0].double() ** 2
        self.maps.append(out)
        return out, out.flatten(1)


def test_randomization_stages_at_each_depth():
    model = Stack()
    assert metrics.randomization_stages(model, 1) == ["stem", "body", "zeros", "head", "gain"]
    assert metrics.randomization_stages(model, 2) == [
        "stem", "body.0", "body.2", "zeros", "head", "gain"]  # fmt: skip
    assert metrics.randomization_stages(model, 3) == [
        "stem", "body.0.0", "body.2", "zeros", "head", "gain"]  # fmt: skip


def test_cascading_randomization_redraws_each_block_once_from_the_logits_down():
    torch.manual_seed(0)
    model = Stack().eval()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    images = torch.rand(3, 3, 24, 20, generator=torch.Generator().manual_seed(2))
    spy = Recorder()
    found = metrics.cascading_randomization(
        model, spy, None, images, torch.tensor([0, 0, 0]), ["a", "b", "c"], depth=2, batch_size=2
    )
    order = ["gain", "head", "zeros", "body.2", "body.0", "stem"]
    assert [s["randomized_through"] for s in found["stages"]] == order
    assert spy.sizes == [2, 1] * (len(order) + 1)  # the original pass, then one per stage
    for name, value in model.named_parameters():  # the user's model is untouched
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    seen = spy.weights[::2]  # one snapshot per pass
    for name, value in before.items():
        torch.testing.assert_close(seen[0][name], value, rtol=0, atol=0)
    for step, stage in enumerate(order, start=1):
        for name, value in before.items():
            redrawn = any(name.startswith(s + ".") for s in order[:step])
            now = seen[step][name]
            if not redrawn:
                torch.testing.assert_close(now, value, rtol=0, atol=0)
                continue
            assert not torch.equal(now, value), (stage, name)
            if step > 1 and any(name.startswith(s + ".") for s in order[: step - 1]):
                torch.testing.assert_close(now, seen[step - 1][name], rtol=0, atol=0)  # once
            elif value.numel() > 1:  # redrawn at this stage: N(0, std of the old values)
                target = max(float(value.std()), 1e-3)
                low, high = (0.6, 1.5) if value.numel() > 50 else (0.3, 2.5)
                assert low < float(now.std()) / target < high, (name, float(now.std()), target)
                assert abs(float(now.mean())) < 0.6 * target
            else:
                assert 0 < abs(float(now)) < 0.4  # one number: N(0, 0.1)
    again = metrics.cascading_randomization(
        model, Recorder(), None, images, torch.tensor([0, 0, 0]), ["a", "b", "c"], depth=2,
        batch_size=2,
    )  # fmt: skip
    assert again == found  # seeded: the same draws every run


def test_cascading_randomization_compares_every_image_with_its_original():
    """Each stage's figures are the image's own map before and after, scaled to [0, 1] and
    upsampled bilinearly to the input; the stage rows are the means over the images."""
    torch.manual_seed(1)
    model = Stack().eval()
    images = torch.rand(3, 3, 24, 20, generator=torch.Generator().manual_seed(3))
    spy = Recorder()
    found = metrics.cascading_randomization(
        model, spy, None, images, torch.tensor([0, 0, 0]), ["a", "b", "c"], depth=1, batch_size=2
    )
    passes = [torch.cat(spy.maps[i : i + 2]) for i in range(0, len(spy.maps), 2)]

    def scaled(maps: torch.Tensor) -> torch.Tensor:
        maps = maps.float()  # maps are float32 from here on, as every method returns them
        flat = maps.flatten(1)
        low, high = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
        small = (maps - low) / (high - low)
        return torch.nn.functional.interpolate(small[:, None], size=(24, 20), mode="bilinear",
                                               align_corners=False)[:, 0]  # fmt: skip

    original = scaled(passes[0])
    assert [e["image"] for e in found["images"]] == ["a", "b", "c"]
    for step, stage in enumerate(found["stages"], start=1):
        after = scaled(passes[step])
        rows = [entry["stages"][step - 1] for entry in found["images"]]
        for index, row in enumerate(rows):
            a, b = original[index].double(), after[index].double()
            assert row["layer"] == stage["randomized_through"]
            assert row["spearman"] == pytest.approx(
                scipy.stats.spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-6)  # fmt: skip
            assert row["spearman_abs"] == pytest.approx(row["spearman"], abs=1e-9)  # maps >= 0
            assert row["ssim"] == pytest.approx(metrics.ssim(a, b), abs=1e-6)
            assert row["hog"] == pytest.approx(metrics.hog_similarity(a, b), abs=1e-6)
        for key in ("spearman", "spearman_abs", "ssim", "hog"):
            assert stage[key] == pytest.approx(sum(r[key] for r in rows) / 3, abs=1e-12)
    assert found["depth"] == 1 and len(found["stages"]) == 5
