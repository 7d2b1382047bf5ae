"""How an optimised picture is held: Fourier coefficients, phases only (MACO), or raw pixels.

The optimiser never touches pixels directly in the default ``fourier`` parameterisation
(Olah et al. 2017, "Feature Visualization", Distill): each colour channel is a real 2-D
Fourier spectrum whose coefficients are scaled by ``1 / max(f, 1/S)`` (``f`` the spatial
frequency in cycles per pixel, ``S`` the side), so that an equal step in every coefficient
gives a natural-image-like ``1/f`` amplitude spectrum instead of white pixel noise. The three
channels are then mixed by the square root of natural images' colour covariance (colours
decorrelated), and a sigmoid maps them into [0, 1].

``maco`` (Fel et al. 2023, "Unlocking Feature Visualization for Deeper Networks with
MAgnitude-Constrained Optimization") keeps the amplitude of every frequency fixed to a
natural-image spectrum and optimises the phases only, so the picture cannot drift into
high-frequency noise or saturated colour however deep the layer; its values are rescaled to
[0, 1] rather than squashed.

``pixel`` is FlashTorch-style naive ascent on the pixels themselves, kept for comparison.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PARAMETERIZATIONS = ("fourier", "maco", "pixel")

# Square root of ImageNet's RGB covariance (an eigen-decomposition, columns scaled by the
# square roots of the eigenvalues), the constant published with Lucid for Olah et al. 2017.
COLOR_SQRT_COVARIANCE = (
    (0.26, 0.09, 0.02),
    (0.27, 0.00, -0.05),
    (0.27, -0.09, 0.03),
)
SPECTRUM_STD = 0.01  # initial spread of the Fourier coefficients
FOURIER_GAIN = 0.25  # scales the spatial signal so the sigmoid starts far from saturation


def frequencies(height: int, width: int) -> torch.Tensor:
    """``H x (W//2 + 1)`` spatial frequency (cycles per pixel) of each real-FFT coefficient."""
    import torch

    fy = torch.fft.fftfreq(height).view(-1, 1)
    fx = torch.fft.rfftfreq(width).view(1, -1)
    return (fy * fy + fx * fx).sqrt()


def color_matrix() -> torch.Tensor:
    """The decorrelating colour map, its largest column norm scaled to 1."""
    import torch

    matrix = torch.tensor(COLOR_SQRT_COVARIANCE)
    return matrix / matrix.norm(dim=0).max()


class Picture:
    """A batch of pictures held in some parameter space; ``rgb()`` renders them in [0, 1]."""

    def __init__(self, count: int, size: tuple[int, int], generator: torch.Generator) -> None:
        self.count, self.size = count, size
        self.parameters: list[torch.Tensor] = []

    def rgb(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def after_step(self) -> None:
        """Keep the parameters valid after an optimiser step (a projection); none by default."""

    def to(self, device: torch.device) -> Picture:
        for tensor in self.parameters:
            tensor.data = tensor.data.to(device)
        self._to(device)
        return self

    def _to(self, device: torch.device) -> None:
        """Move fixed buffers (spectrum scales, colour maps) along with the parameters."""


class FourierPicture(Picture):
    """Each channel's real-FFT coefficients ``c``: pixels = sigmoid(M · irfft(c / max(f, 1/S)))."""

    def __init__(self, count: int, size: tuple[int, int], generator: torch.Generator) -> None:
        import torch

        super().__init__(count, size, generator)
        height, width = size
        freqs = frequencies(height, width)
        self.scale = 1.0 / freqs.clamp_min(1.0 / max(height, width))
        shape = (count, 3, *freqs.shape, 2)  # real and imaginary parts
        spectrum = torch.randn(shape, generator=generator) * SPECTRUM_STD
        self.spectrum = spectrum.requires_grad_(True)
        self.parameters = [self.spectrum]
        self.colors = color_matrix()

    def _to(self, device: torch.device) -> None:
        self.scale, self.colors = self.scale.to(device), self.colors.to(device)

    def signal(self) -> torch.Tensor:
        """The decorrelated colour signal before the sigmoid (``B x 3 x H x W``)."""
        import torch

        coefficients = torch.view_as_complex(self.spectrum) * self.scale
        spatial = torch.fft.irfft2(coefficients, s=self.size, norm="ortho") * FOURIER_GAIN
        return torch.einsum("bchw,dc->bdhw", spatial, self.colors)

    def rgb(self) -> torch.Tensor:
        return self.signal().sigmoid()


class PhasePicture(Picture):
    """MACO: fixed amplitudes ``A(f)`` (a natural ``1/f`` spectrum), optimised phases ``phi``.

    pixels = rescale(M · irfft(A · e^{i phi})), where the rescale maps each picture's values
    to [0, 1] through its own standard deviation (a soft clip at +-2.5 std around 0.5).
    """

    def __init__(
        self,
        count: int,
        size: tuple[int, int],
        generator: torch.Generator,
        magnitude: torch.Tensor | None = None,
    ) -> None:
        import torch

        super().__init__(count, size, generator)
        height, width = size
        freqs = frequencies(height, width)
        if magnitude is None:
            magnitude = 1.0 / freqs.clamp_min(1.0 / max(height, width))
            magnitude[0, 0] = 0.0  # no offset: the rescale centres the picture
        self.magnitude = magnitude.expand(3, *freqs.shape).clone()
        phase = (torch.rand((count, 3, *freqs.shape), generator=generator) * 2 - 1) * math.pi
        self.phase = phase.requires_grad_(True)
        self.parameters = [self.phase]
        self.colors = color_matrix()

    def _to(self, device: torch.device) -> None:
        self.magnitude, self.colors = self.magnitude.to(device), self.colors.to(device)

    def rgb(self) -> torch.Tensor:
        import torch

        coefficients = torch.polar(self.magnitude.expand_as(self.phase), self.phase)
        spatial = torch.fft.irfft2(coefficients, s=self.size, norm="ortho")
        mixed = torch.einsum("bchw,dc->bdhw", spatial, self.colors)
        std = mixed.flatten(1).std(1).clamp_min(1e-8).view(-1, 1, 1, 1)
        centred = mixed - mixed.mean((1, 2, 3), keepdim=True)
        return (centred / (5 * std) + 0.5).clamp(0, 1)


class PixelPicture(Picture):
    """Naive ascent: the pixels themselves, started at grey noise and clipped to [0, 1]."""

    def __init__(self, count: int, size: tuple[int, int], generator: torch.Generator) -> None:
        import torch

        super().__init__(count, size, generator)
        noise = torch.rand((count, 3, *size), generator=generator)
        self.pixels = (0.4 + 0.2 * noise).requires_grad_(True)
        self.parameters = [self.pixels]

    def rgb(self) -> torch.Tensor:
        return self.pixels

    def after_step(self) -> None:
        self.pixels.data.clamp_(0, 1)


def make_picture(
    kind: str, count: int, size: tuple[int, int], generator: torch.Generator
) -> Picture:
    """A fresh batch of ``count`` pictures in the named parameterisation."""
    from vizcli.errors import UsageError

    kinds = {"fourier": FourierPicture, "maco": PhasePicture, "pixel": PixelPicture}
    if kind not in kinds:
        raise UsageError(f"unknown parameterisation {kind!r}", hint="fourier, maco or pixel")
    return kinds[kind](count, size, generator)
