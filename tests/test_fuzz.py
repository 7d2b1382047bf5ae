"""Argument parsers under hypothesis: any string parses or is a usage error, never a crash."""

from __future__ import annotations

import contextlib
import importlib.util
import io

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vizcli.cam.explain import resolve_targets
from vizcli.errors import UsageError
from vizcli.layers import select_layers
from vizcli.models import resolve_model

with torch.device("meta"):
    from torchvision.models import resnet18

    RESNET = resnet18()
NAMES = [f"class {i}" for i in range(10)] + ["tabby", "tiger cat", "Egyptian cat"]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.lists(st.text(max_size=20), min_size=1, max_size=3))
def test_layer_patterns(patterns):
    try:
        chosen = select_layers(RESNET, patterns)
    except UsageError as exc:
        assert exc.exit_code == 2 and "\n" not in str(exc)
    else:
        assert chosen and all(name in dict(RESNET.named_modules()) for name in chosen)


@FAST
@given(st.lists(st.text(max_size=15), min_size=1, max_size=3))
def test_class_targets(texts):
    try:
        indices = resolve_targets(texts, NAMES)
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(0 <= i < len(NAMES) for i in indices)


def _importable(spec: str) -> bool:
    module = spec.rpartition(":")[0]
    try:
        return bool(module) and importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30).filter(lambda s: not _importable(s)))
def test_model_specs(spec):
    try:
        resolve_model(spec, meta=True)
    except UsageError as exc:
        assert exc.exit_code == 2 and "\n" not in str(exc)
    except Exception as exc:  # only the VizError family may escape, never anything else
        from vizcli.errors import VizError

        assert isinstance(exc, VizError), repr(exc)


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet="0123456789,x -+.a", max_size=14))
def test_input_option_through_the_cli(text):
    from vizcli.cli.app import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(["summary", "tests/tiny_models.py:TinyNet", f"--input={text}", "-f", "json"])
            code = 0
        except SystemExit as exc:
            code = exc.code
    assert code in (0, 2), stderr.getvalue()
    assert "Traceback" not in stderr.getvalue() and "internal error" not in stderr.getvalue()
