"""Shared fixtures: an isolated torch hub cache, a CLI runner, sample images."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"
TINY = str(ROOT / "tests" / "tiny_models.py")


def shared(scope: str):
    """A fixture scope: ``scope``, except while mutmut records which tests reach which
    function (``make mutate``). Then every test builds its own value, so every test that
    uses it is credited, not only the first; otherwise a mutant would be checked by the one
    test that happened to build the cached value."""

    def decide(fixture_name: str, config: pytest.Config) -> str:
        return "function" if os.environ.get("MUTANT_UNDER_TEST") == "stats" else scope

    return decide


@pytest.fixture(autouse=True)
def isolated_torch_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets an empty TORCH_HOME and offline mode: no test touches the network."""
    home = tmp_path_factory.mktemp("torch_home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "huggingface"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VIZCLI_OFFLINE", "1")
    return home


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys):
    """Run ``vizcli ARGS`` in-process through the real entry point (error handling included)."""
    from vizcli.cli.app import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def run_subprocess(*args: str, env: dict[str, str] | None = None, timeout: int = 120) -> Result:
    """Run the installed CLI in a fresh interpreter, as a user's shell would."""
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "vizcli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
