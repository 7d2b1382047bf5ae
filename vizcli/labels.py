"""Class names: ``--labels FILE`` (one per line, or JSON), ``imagenet`` or a model's own cfg.

``imagenet`` (``imagenet-1k``) is torchvision's list of the 1,000 ImageNet-1k names;
``imagenet-22k``/``imagenet-21k``/``imagenet-12k`` come from timm's ImageNet info when timm is
installed. JSON files hold a list of names or an ``{"index": "name"}`` object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vizcli.errors import UsageError, first_line, suggest

IMAGENET_ALIASES = {"imagenet": "imagenet-1k", "imagenet1k": "imagenet-1k", "in1k": "imagenet-1k"}
TIMM_SUBSETS = ("imagenet-1k", "imagenet-12k", "imagenet-21k", "imagenet-22k", "imagenet-21k-goog")
MAX_LABELS_BYTES = 64 * 1024 * 1024


def load_labels(spec: str) -> list[str]:
    """Names from a file, or a named list (``imagenet``, ``imagenet-22k``...)."""
    key = IMAGENET_ALIASES.get(spec.strip().lower(), spec.strip().lower())
    if key == "imagenet-1k":
        from torchvision.models._meta import _IMAGENET_CATEGORIES

        return list(_IMAGENET_CATEGORIES)
    if key in TIMM_SUBSETS:
        return timm_subset_labels(key)
    return _read_labels_file(Path(spec).expanduser())


def timm_subset_labels(subset: str) -> list[str]:
    try:
        from timm.data import ImageNetInfo
    except ImportError as exc:
        raise UsageError(f"--labels {subset} needs timm", hint="pip install timm") from exc
    info = ImageNetInfo(subset)
    names = [info.index_to_description(i) for i in range(info.num_classes())]
    return [name.split(",")[0].strip() for name in names]


def _read_labels_file(path: Path) -> list[str]:
    if not path.is_file():
        hint = "give a file (one name per line, or JSON), or imagenet / imagenet-22k"
        raise UsageError(f"labels file not found: {path}", hint=hint)
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise UsageError(f"labels file {path} is larger than 64 MB")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read labels file {path}: {first_line(exc)}") from exc
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" or stripped[:1] in ("[", "{"):
        return _labels_from_json(stripped, path)
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise UsageError(f"labels file {path} is empty")
    return names


def _labels_from_json(text: str, path: Path) -> list[str]:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"labels file {path} is not valid JSON: {first_line(exc)}") from exc
    if isinstance(data, list) and data and all(isinstance(n, str) for n in data):
        return list(data)
    if isinstance(data, dict) and data:
        try:
            indexed = {int(k): str(v[-1] if isinstance(v, list) else v) for k, v in data.items()}
        except (TypeError, ValueError, IndexError) as exc:
            raise UsageError(f"labels file {path}: keys must be class indices") from exc
        if sorted(indexed) != list(range(len(indexed))):
            raise UsageError(f"labels file {path}: indices must be 0..{len(indexed) - 1}")
        return [indexed[i] for i in range(len(indexed))]
    raise UsageError(f"labels file {path} must hold a list of names or an index->name object")


def labels_from_cfg(cfg: Any) -> list[str] | None:
    """Names a model declares in its ``pretrained_cfg["label_names"]`` (a list or a name)."""
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else vars(cfg)
    names = cfg.get("label_names")
    if isinstance(names, str):
        return load_labels(names)
    if isinstance(names, (list, tuple)) and names:
        return [str(n) for n in names]
    return None


def class_names(categories: list[str] | None, count: int) -> list[str]:
    """The model's class names when there are ``count`` of them, else ``class 0``, ``class 1``..."""
    names = categories or []
    return list(names) if len(names) == count else [f"class {i}" for i in range(count)]


def resolve_targets(texts: Sequence[str], names: list[str]) -> list[int]:
    """Class indices from ``--target`` values: an index, a class name, or a unique part of one."""
    indices = []
    lowered = [n.lower() for n in names]
    for text in texts:
        value = text.strip()
        if re.fullmatch(r"[+-]?[0-9]+", value):
            index = int(value)
            if not 0 <= index < len(names):
                raise UsageError(
                    f"class index {index} is out of range",
                    hint=f"the model has {len(names)} classes: 0..{len(names) - 1}",
                )
            indices.append(index)
            continue
        if value.lower() in lowered:
            indices.append(lowered.index(value.lower()))
            continue
        partial = [i for i, n in enumerate(lowered) if value.lower() in n]
        if len(partial) == 1:
            indices.append(partial[0])
            continue
        hint = (
            "matches " + ", ".join(repr(names[i]) for i in partial[:4])
            if partial
            else suggest(value, names) or "give a class index or name"
        )
        raise UsageError(f"unknown class {value!r}", hint=hint)
    return indices
