"""timm models by name: ``timm/convnext_tiny``, ``timm/vit_small_patch16_224.augreg_in21k``.

Pretrained weights come from the Hugging Face hub cache (``HF_HOME``) when the file is there,
are downloaded by timm otherwise (never with ``--offline`` or ``HF_HUB_OFFLINE=1``), or from a
checkpoint file (``.pth``/``.safetensors``). Preprocessing comes from the model's own
``pretrained_cfg``; ImageNet class names from the label set timm infers for the head.
timm is imported only when a ``timm/`` spec is used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli.errors import (
    ModelNotFoundError,
    ModelRunError,
    UsageError,
    WeightsError,
    WeightsUsageError,
    first_line,
    suggest,
)
from vizcli.models.checkpoints import is_checkpoint_request, load_checkpoint_into
from vizcli.models.devices import resolve_device
from vizcli.models.loaded import (
    LoadedModel,
    ModelEntry,
    WeightsInfo,
    matches,
    on_meta,
    quiet_builder_warnings,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger("vizcli")
PREFIX = "timm/"
HUB_FILENAMES = ("model.safetensors", "pytorch_model.bin")


def is_timm_spec(spec: str) -> bool:
    return spec.startswith(PREFIX)


def _timm() -> Any:
    from vizcli.models.download import read_timeout

    for name in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):  # read when hf_hub imports
        os.environ.setdefault(name, str(int(read_timeout())))
    try:
        import timm
    except ImportError as exc:
        raise UsageError("timm models need timm", hint="pip install timm") from exc
    return timm


def list_model_entries(pattern: str | None = None) -> list[ModelEntry]:
    """Every timm architecture (optionally filtered), with its pretrained tags."""
    timm = _timm()
    tags: dict[str, list[str]] = {}
    for full in timm.list_pretrained():
        arch, _, tag = full.partition(".")
        tags.setdefault(arch, []).append(tag)
    entries = []
    for name in timm.list_models():
        if pattern and not matches(name, pattern):
            continue
        found = tags.get(name, [])
        entries.append(
            ModelEntry(PREFIX + name, "classification", found, found[0] if found else None)
        )
    return entries


def _split(spec: str) -> tuple[str, str | None]:
    """``timm/arch.tag`` -> (arch, tag); checks the architecture exists, with suggestions."""
    timm = _timm()
    full = spec[len(PREFIX) :]
    arch, _, tag = full.partition(".")
    if not arch or not timm.is_model(arch):
        hint = suggest(arch, timm.list_models()) or "see 'vizcli models --source timm'"
        raise ModelNotFoundError(f"unknown timm model {arch!r}", hint=hint)
    if tag and full not in timm.list_pretrained(full):
        known = [t.partition(".")[2] for t in timm.list_pretrained(arch + ".*")]
        hint = suggest(tag, known) or ("tags: " + ", ".join(known) if known else None)
        raise ModelNotFoundError(f"timm has no pretrained tag {tag!r} for {arch}", hint=hint)
    return arch, tag or None


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface"
    )
    return Path(home).expanduser() / "hub"


def cached_hub_file(hub_id: str) -> Path | None:
    """The file timm would load for ``hub_id`` if the Hugging Face cache holds it."""
    from huggingface_hub import try_to_load_from_cache

    repo, _, revision = hub_id.partition("@")
    for filename in HUB_FILENAMES:
        found = try_to_load_from_cache(
            repo, filename, cache_dir=hub_cache_dir(), revision=revision or None
        )
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def resolve(spec: str, weights: str, device_name: str, offline: bool, meta: bool) -> LoadedModel:
    import torch

    from vizcli.images import preprocess_from_cfg

    timm = _timm()
    arch, tag = _split(spec)
    full = f"{arch}.{tag}" if tag else arch
    device = resolve_device(device_name)
    offline = offline or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true")
    lowered = weights.lower()
    cfg = timm.models.get_pretrained_cfg(full) if tag or timm.list_pretrained(arch) else None
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    tagged = f"{arch}.{cfg.tag}" if cfg is not None and cfg.tag else full

    info: WeightsInfo
    model: nn.Module | None = None
    if is_checkpoint_request(weights):
        model = _create(timm, full, torch.device("cpu"), pretrained=False)
        info = load_checkpoint_into(model, weights)
    elif lowered in ("auto", "default"):
        model, info = _pretrained(timm, tagged, hub_id, weights, offline, lowered != "auto")
    elif lowered != "none":
        raise WeightsUsageError(
            f"--weights {weights!r} is not a timm weights choice",
            hint="use none, auto, DEFAULT, a tag in the name (timm/arch.tag) or a checkpoint",
        )
    if model is None:
        build = torch.device("meta") if meta else torch.device("cpu")
        model = _create(timm, full, build, pretrained=False)
        if lowered == "none":
            info = WeightsInfo(weights, "random")
    if not on_meta(model):
        model = model.to(device)
    data_cfg = timm.data.resolve_data_config({}, model=model)
    return LoadedModel(
        model, spec, full, "timm", "classification", info, device,
        preprocess_from_cfg(data_cfg), _labels(timm, model),
    )  # fmt: skip


def _pretrained(
    timm: Any, full: str, hub_id: str | None, weights: str, offline: bool, required: bool
) -> tuple[nn.Module | None, WeightsInfo]:
    """Pretrained weights from the hub cache or a download; None with a warning for auto."""
    import torch

    name = PREFIX + full
    if hub_id is None:
        problem = f"timm has no pretrained weights for {full}"
    else:
        path = cached_hub_file(hub_id)
        if path is not None:
            overlay = {"file": str(path), "source": "", "num_classes": None}
            overlay = {k: v for k, v in overlay.items() if v is not None}
            model = _create(timm, full, torch.device("cpu"), True, overlay=overlay)
            return model, WeightsInfo(weights, "timm", name=name, path=str(path))
        if offline:
            problem = f"{hub_id} is not in the Hugging Face hub cache and --offline is set"
        elif not _hub_reachable():
            problem = f"{hub_id} is not in the Hugging Face hub cache and the hub cannot be reached"
        else:
            log.info("downloading %s from the Hugging Face hub into %s", hub_id, hub_cache_dir())
            try:
                model = _create(timm, full, torch.device("cpu"), pretrained=True)
            except WeightsError as exc:
                problem = str(exc)
            else:
                found = cached_hub_file(hub_id)
                return model, WeightsInfo(weights, "timm", name=name, path=str(found or hub_id))
    if required:
        raise WeightsError(problem, hint="copy the weights into HF_HOME, or use --weights none")
    return None, WeightsInfo(weights, "random", warning=f"{problem}; using random init")


def _hub_reachable() -> bool:
    from urllib.parse import urlparse

    from vizcli.models.download import reachable

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    return bool(endpoint.hostname) and reachable(endpoint.hostname, port)


def _create(
    timm: Any, full: str, device: torch.device, pretrained: bool, overlay: dict | None = None
) -> nn.Module:
    import torch

    kwargs: dict[str, Any] = {"pretrained": pretrained}
    if overlay:
        kwargs["pretrained_cfg_overlay"] = overlay
    try:
        with torch.device(device), quiet_builder_warnings():
            return timm.create_model(full, **kwargs)
    except Exception as exc:
        if pretrained:
            raise WeightsError(f"loading pretrained {full} failed: {first_line(exc)}") from exc
        if device.type == "meta":  # a model that cannot be built on meta is built for real
            return _create(timm, full, torch.device("cpu"), pretrained)
        raise ModelRunError(f"building timm/{full} failed: {first_line(exc)}") from exc


def _labels(timm: Any, model: nn.Module) -> list[str] | None:
    from vizcli.labels import labels_from_cfg, load_labels

    cfg = getattr(model, "pretrained_cfg", None) or {}
    declared = labels_from_cfg({"label_names": cfg.get("label_names")})
    if declared:
        return declared
    subset = timm.data.infer_imagenet_subset(model)
    return load_labels(subset) if subset else None
