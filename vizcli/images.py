"""One image loader for every command: open, validate, convert and preprocess.

Any file Pillow opens works (first frame of animations, EXIF orientation applied, every
mode converted to RGB or L). Preprocessing follows the model's weights (resize, center
crop, normalise); ``Preprocess.with_size`` overrides the crop size. Pillow's
decompression-bomb limit stays on.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli.errors import ImageError, UsageError, first_line

if TYPE_CHECKING:
    import torch
    from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


@dataclass(frozen=True)
class Preprocess:
    """Resize, crop to ``crop`` (H, W), scale to [0, 1] and normalise.

    ``resize`` is the short side (an int, torchvision's convention), a target (H, W) that
    ``crop_mode`` reaches (timm's convention for non-square inputs and squash/border modes),
    or None to squash the whole picture to the crop. ``crop_mode`` with an (H, W) target:
    ``center`` scales, keeping the aspect, until the picture covers it; ``squash`` resizes to
    it exactly; ``border`` scales until the picture fits inside it, and the crop pads with
    the mean colour. Then the centre crop.
    """

    resize: int | tuple[int, int] | None
    crop: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    channels: int = 3
    crop_mode: str = "center"

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        return (batch, self.channels, *self.crop)

    def with_size(self, size: int) -> Preprocess:
        """Crop to ``size`` and resize in the weights' resize/crop ratio (256/224)."""
        if size <= 0:
            raise UsageError(f"--size must be positive, got {size}")
        if self.resize is None:
            resize = None
        elif isinstance(self.resize, int):
            resize = round(size * self.resize / max(self.crop))
        else:
            resize = tuple(round(size * r / c) for r, c in zip(self.resize, self.crop, strict=True))
        return replace(self, resize=resize, crop=(size, size))

    def with_crop(self, crop: str) -> Preprocess:
        """``--crop``: a fraction (0.875: resize to size/0.875, centre-crop) or ``squash``."""
        fraction = parse_crop(crop)
        if fraction is None:
            return replace(self, resize=None, crop_mode="center")
        return replace(self, resize=math.floor(max(self.crop) / fraction), crop_mode="center")

    def with_normalization(
        self, mean: Sequence[float] | None, std: Sequence[float] | None, normalize: bool = True
    ) -> Preprocess:
        """``--mean``/``--std`` (one number or one per channel); ``normalize=False``: raw [0, 1]."""
        if not normalize:
            if mean or std:
                raise UsageError("--no-normalize cannot be combined with --mean/--std")
            return replace(self, mean=(0.0,) * self.channels, std=(1.0,) * self.channels)
        return replace(
            self,
            mean=self.mean if not mean else _per_channel("--mean", mean, self.channels),
            std=self.std if not std else _per_channel("--std", std, self.channels, positive=True),
        )

    def resized(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a ``width x height`` picture after the resize step."""
        crop_h, crop_w = self.crop
        if self.resize is None:  # squash: the whole picture, resized to the crop
            return crop_w, crop_h
        if isinstance(self.resize, int):  # torchvision: short side, long side truncated
            if width <= height:
                return self.resize, int(self.resize * height / width)
            return int(self.resize * width / height), self.resize
        target_h, target_w = self.resize
        if self.crop_mode == "squash":
            return target_w, target_h
        ratios = (height / target_h, width / target_w)  # timm's ResizeKeepRatio
        ratio = max(ratios) if self.crop_mode == "border" else min(ratios)
        return max(1, round(width / ratio)), max(1, round(height / ratio))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """Return a normalised ``C x H x W`` float tensor."""
        import torchvision.transforms.functional as F
        from torchvision.transforms import InterpolationMode

        mode = InterpolationMode(self.interpolation)
        width, height = self.resized(*image.size)
        if isinstance(self.resize, int):  # torchvision's own short-side arithmetic
            image = F.resize(image, [self.resize], interpolation=mode, antialias=True)
        else:
            image = F.resize(image, [height, width], interpolation=mode, antialias=True)
        crop_h, crop_w = self.crop
        if self.crop_mode == "border" and (width < crop_w or height < crop_h):
            left, top = max(crop_w - width, 0) // 2, max(crop_h - height, 0) // 2
            fill = tuple(round(255 * m) for m in self.mean)
            padding = [left, top, max(crop_w - width, 0) - left, max(crop_h - height, 0) - top]
            image = F.pad(image, padding, fill=fill if len(fill) > 1 else fill[0])
        image = F.center_crop(image, list(self.crop))
        tensor = F.to_tensor(image)
        return F.normalize(tensor, list(self.mean), list(self.std))

    def denormalize(self, tensor: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation, clamped to [0, 1] (for showing the input)."""
        import torch

        mean = torch.tensor(self.mean, dtype=tensor.dtype, device=tensor.device)
        std = torch.tensor(self.std, dtype=tensor.dtype, device=tensor.device)
        shape = (-1, 1, 1)
        return (tensor * std.view(shape) + mean.view(shape)).clamp(0, 1)

    def geometry(self, width: int, height: int) -> dict[str, Any]:
        """Where the model's input comes from in a ``width x height`` picture: the size it is
        resized to and the crop box in the picture's own pixels (as torchvision computes
        them: centre crop offsets rounded)."""
        crop_h, crop_w = self.crop
        new_w, new_h = self.resized(width, height)
        top, left = _crop_offset(new_h, crop_h), _crop_offset(new_w, crop_w)
        sx, sy = width / new_w, height / new_h
        box = [left * sx, top * sy, (left + crop_w) * sx, (top + crop_h) * sy]
        return {
            "resize": [new_w, new_h],
            "crop_box": [round(v, 2) for v in box],
            "interpolation": self.interpolation,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "resize": list(self.resize) if isinstance(self.resize, tuple) else self.resize,
            "crop_mode": self.crop_mode,
            "crop": list(self.crop),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }


def _crop_offset(size: int, crop: int) -> int:
    """Where a centre crop starts (torchvision's ``center_crop``): rounded half the margin, or
    minus half the padding (the odd pixel goes right/bottom) when the picture is smaller."""
    if size < crop:
        return -((crop - size) // 2)
    return int(round((size - crop) / 2.0))


def parse_crop(text: str) -> float | None:
    """``--crop``: a fraction in (0, 1], or None for ``squash`` (no crop)."""
    value = text.strip().lower()
    if value in ("squash", "none"):
        return None
    try:
        fraction = float(value)
    except ValueError:
        fraction = float("nan")
    if not 0 < fraction <= 1:  # also rejects NaN
        raise UsageError(
            f"--crop must be a fraction in (0, 1] or 'squash', got {text!r}",
            hint="0.875 resizes 224-pixel crops from 256",
        )
    return fraction


def _per_channel(
    option: str, values: Sequence[float], channels: int, positive: bool = False
) -> tuple[float, ...]:
    if len(values) == 1:
        values = list(values) * channels
    if len(values) != channels:
        raise UsageError(f"{option} takes 1 or {channels} numbers, got {len(values)}")
    for value in values:
        if not math.isfinite(value) or (positive and value <= 0):
            raise UsageError(f"{option} values must be finite" + (" and > 0" if positive else ""))
    return tuple(float(v) for v in values)


IMAGENET_PREPROCESS = Preprocess(
    resize=256, crop=(224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)


def preprocess_from_weights(weights: Any) -> Preprocess:
    """Read resize/crop/mean/std from a torchvision weights member (no download needed)."""
    transform = weights.transforms()
    crop = getattr(transform, "crop_size", None)
    resize = getattr(transform, "resize_size", None)
    mean = getattr(transform, "mean", None) or IMAGENET_PREPROCESS.mean
    std = getattr(transform, "std", None) or IMAGENET_PREPROCESS.std
    interpolation = getattr(transform, "interpolation", None)
    if crop:
        crop_hw = (crop[0], crop[-1])
        resize_short = resize[0] if resize and len(resize) == 1 else None
        if resize and len(resize) == 2:  # video weights resize to a fixed (H, W)
            resize_short = min(resize)
    elif resize:  # segmentation weights only resize the short side
        crop_hw = (resize[0], resize[0])
        resize_short = resize[0]
    else:
        return IMAGENET_PREPROCESS
    return Preprocess(
        resize=resize_short,
        crop=crop_hw,
        mean=tuple(mean),
        std=tuple(std),
        interpolation=interpolation.value if interpolation is not None else "bilinear",
    )


def preprocess_from_cfg(cfg: Any) -> Preprocess:
    """Read timm's ``pretrained_cfg`` convention (also what a factory's model may declare).

    Keys: ``input_size`` (C, H, W), ``crop_pct`` (resize to size/crop_pct, then centre-crop),
    ``crop_mode`` (``center``, ``squash`` or ``border``), ``interpolation``, ``mean``, ``std``.
    Missing keys take timm's defaults (224, crop_pct 0.875, bicubic, ImageNet statistics), so
    the result equals timm's own eval transform; no cfg at all gives
    :data:`IMAGENET_PREPROCESS`.
    """
    if cfg is None:
        return IMAGENET_PREPROCESS
    if not isinstance(cfg, dict):
        cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else vars(cfg)
    base = IMAGENET_PREPROCESS
    size = cfg.get("input_size") or (base.channels, *base.crop)
    channels, height, width = (int(v) for v in size[-3:])
    crop_pct = float(cfg.get("crop_pct") or 0.875)  # timm's DEFAULT_CROP_PCT
    mean = tuple(cfg.get("mean") or base.mean)
    std = tuple(cfg.get("std") or base.std)
    if len(mean) != channels:
        mean = (mean * channels)[:channels] if len(mean) == 1 else base.mean[:channels]
    if len(std) != channels:
        std = (std * channels)[:channels] if len(std) == 1 else base.std[:channels]
    interpolation = str(cfg.get("interpolation") or "bicubic")  # timm's default
    if interpolation not in ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos"):
        interpolation = "bicubic"
    mode = str(cfg.get("crop_mode") or "center")
    target = (math.floor(height / crop_pct), math.floor(width / crop_pct))
    resize: int | tuple[int, int] = target
    if mode not in ("squash", "border"):  # timm: centre, short side when the target is square
        mode = "center"
        resize = target[0] if target[0] == target[1] else target
    return Preprocess(
        resize=resize,
        crop=(height, width),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(v) for v in std),
        interpolation=interpolation,
        channels=channels,
        crop_mode=mode,
    )


def load_image(path: str | Path, mode: str = "RGB") -> Image.Image:
    """Open any image Pillow reads and return it decoded, upright, in ``mode`` (RGB or L)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path).expanduser()
    _check_is_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.seek(0)  # first frame of GIF/WebP/TIFF animations
                image.load()
                image = ImageOps.exif_transpose(image)
                return _convert_mode(image, mode)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"{path}: refused to decode, too many pixels for a safe decode ({first_line(exc)})"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{path} is not an image Pillow can read (unknown format or corrupt)"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path} could not be decoded: {first_line(exc)}") from exc


def _check_is_file(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"image not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; expected an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path} is an empty file (0 bytes)")


def _convert_mode(image: Image.Image, mode: str) -> Image.Image:
    """Convert every Pillow mode to RGB or L, keeping 16-bit ranges and compositing alpha."""
    import numpy as np
    from PIL import Image

    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode != "F" and array.max() > 255 else 255.0
        if image.mode == "F" and array.max() <= 1.0:
            peak = 1.0
        array = np.clip(array / peak * 255.0, 0, 255).round().astype(np.uint8)
        image = Image.fromarray(array, mode="L")
    if image.mode == "La":  # premultiplied grey + alpha: Pillow cannot convert it
        pair = np.asarray(image, dtype=np.float64)
        alpha = pair[..., 1]
        grey = np.divide(pair[..., 0] * 255.0, alpha, out=np.zeros_like(alpha), where=alpha > 0)
        pair = np.stack([np.clip(grey, 0, 255), alpha], axis=-1).round().astype(np.uint8)
        image = Image.fromarray(pair, mode="LA")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:  # what a viewer shows: the image over a white page
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert(mode)


def load_tensor(path: str | Path, preprocess: Preprocess) -> torch.Tensor:
    """Load one image and return a ``1 x C x H x W`` batch ready for the model."""
    mode = "L" if preprocess.channels == 1 else "RGB"
    return preprocess(load_image(path, mode)).unsqueeze(0)


def find_images(paths: Sequence[str | Path]) -> list[Path]:
    """Expand folders (sorted, image suffixes only) and keep files as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if _is_image_name(p)))
        else:
            _check_is_file(path)
            found.append(path)
    if not found:
        raise UsageError("no images found in " + ", ".join(map(str, paths)))
    return found


def _is_image_name(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def unique_labels(paths: Sequence[Path]) -> list[str]:
    """A readable, distinct label per image: its stem, or the shortest path suffix that
    tells it apart (``a/cat.png``, ``b/cat.png`` -> ``a/cat``, ``b/cat``).

    Stems are tried at growing depth first, then full names (``cat.png`` and ``cat.jpg`` in one
    folder); the same file given twice gets ``-2``, ``-3``... Labels use ``/`` on every system.
    """
    candidates = []
    for path in paths:
        absolute = Path(path).absolute()
        folders = [part for part in absolute.parent.parts if part != absolute.anchor]
        options: dict[tuple[str, int], str] = {}
        for kind, last in (("stem", absolute.stem), ("name", absolute.name)):
            for depth in range(len(folders) + 1):
                options[(kind, depth)] = "/".join([*folders[len(folders) - depth :], last])
        candidates.append(options)
    labels = []
    for index, options in enumerate(candidates):
        others = [c for i, c in enumerate(candidates) if i != index]
        label = next(
            (text for key, text in options.items() if all(o.get(key) != text for o in others)),
            options[("stem", 0)],  # the same file twice: told apart by a counter below
        )
        labels.append(label)
    used: set[str] = set()
    for index, label in enumerate(labels):
        counter = 2
        while labels[index] in used:
            labels[index], counter = f"{label}-{counter}", counter + 1
        used.add(labels[index])
    return labels
