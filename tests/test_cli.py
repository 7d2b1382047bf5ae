"""The CLI as a user meets it: fast help, clean output formats, one-line errors and exit codes."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import TINY, run_subprocess

NO_TORCH = (
    "import sys\nfrom vizcli.cli.app import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print('TORCH_LOADED' if 'torch' in sys.modules else 'NO_TORCH')"
)


@pytest.mark.parametrize("args", [["--help"], ["summary", "--help"], ["models", "--help"]])
def test_help_never_imports_torch(args):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout
    assert proc.stdout.strip().endswith("NO_TORCH")


def test_python_dash_m_runs_the_cli():
    result = run_subprocess("--version")
    assert result.code == 0 and result.stdout.startswith("vizcli ")


def test_summary_table(cli):
    result = cli("summary", "resnet18", "--depth", "1")
    assert result.code == 0, result.stderr
    assert "resnet18 (ResNet)" in result.stdout
    assert "11,689,512" in result.stdout and "1.81 G" in result.stdout
    assert "weights: none (random init)" in result.stdout
    assert "Units." not in result.stdout


def test_summary_json_for_scripts(cli):
    result = cli("summary", "resnet18", "--format", "json", "--depth", "2")
    data = json.loads(result.stdout)
    assert data["totals"]["params"] == 11_689_512
    assert data["weights"]["kind"] == "random"
    assert data["inputs"] == [{"shape": [1, 3, 224, 224], "dtype": "float32"}]
    assert max(row["depth"] for row in data["layers"]) == 2


def test_summary_csv_and_markdown(cli):
    rows = list(csv.DictReader(io.StringIO(cli("summary", "resnet18", "-f", "csv").stdout)))
    conv1 = next(r for r in rows if r["name"] == "conv1")
    assert conv1["output_shape"] == "1x64x112x112" and conv1["params"] == "9408"
    markdown = cli("summary", "resnet18", "-f", "markdown", "--depth", "1").stdout
    assert "| Layer | Type |" in markdown and "| Total params | 11,689,512 |" in markdown


def test_summary_columns(cli):
    result = cli("summary", f"{TINY}:TinyNet", "--input", "1,3,8,8", "-c", "kernel", "-c", "memory")
    assert result.code == 0, result.stderr
    assert "Kernel" in result.stdout and "Output size" in result.stdout
    assert "3×3" in result.stdout
    both = cli("summary", f"{TINY}:TinyNet", "--input", "1,3,8,8", "-c", "params_percent,trainable")
    assert "Params %" in both.stdout and "Trainable" in both.stdout
    assert "86.15%" in both.stdout  # the conv holds 224 of the 260 parameters


def test_output_file_is_written_and_never_silently_replaced(cli, tmp_path):
    target = tmp_path / "summary.json"
    assert cli("summary", "resnet18", "-f", "json", "-o", str(target)).code == 0
    assert json.loads(target.read_text())["totals"]["params"] == 11_689_512
    assert target.stat().st_mode & 0o044, "readable by others, like any file the user creates"
    target.write_text("keep me")
    result = cli("summary", "resnet18", "-f", "json", "-o", str(target))
    assert result.code == 2 and "already exists" in result.stderr
    assert target.read_text() == "keep me"
    assert cli("summary", "resnet18", "-f", "json", "-o", str(target), "--force").code == 0
    assert json.loads(target.read_text())["schema"] == "vizcli.summary/1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temp files left


def test_models_listing(cli):
    data = json.loads(cli("models", "resnet5*", "--format", "json").stdout)
    assert [d["name"] for d in data] == ["resnet50"]
    assert data[0]["weights"] == ["IMAGENET1K_V1", "IMAGENET1K_V2"]
    table = cli("models", "--task", "optical_flow").stdout
    assert "raft_large" in table and "resnet50" not in table


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["summary", "resnet19"], 2, "did you mean 'resnet18'"),
        (["summary", "resnet18", "--input", "1,3,x"], 2, "not an integer"),
        (["summary", "resnet18", "--input", "0,3,224,224"], 2, "not positive"),
        (["summary", "resnet18", "--input", "1,3,-5,224"], 2, "not positive"),
        (["summary", "resnet18", "--input", "1,3,224"], 2, "cannot run on input"),
        (["summary", "resnet18", "--weights", "IMAGENET1K_V9"], 2, "unknown weights"),
        (["summary", "resnet18", "--weights", "DEFAULT"], 1, "not in the torch hub cache"),
        (["summary", "resnet18", "--weights", "missing.pth"], 2, "checkpoint not found"),
        (["summary", "resnet18", "--image", "missing.png"], 2, "image not found"),
        (["summary", "resnet18", "--device", "tpu"], 2, "device"),
        (["summary", "resnet18", "--format", "yaml"], 2, "yaml"),
        (["summary", "resnet18", "--bogus"], 2, "No such option"),
        (["summary", "resnet18", "--columns", "outptu"], 2, "did you mean 'output'"),
        (["models", "--task", "poetry"], 2, "poetry"),
        (["frobnicate"], 2, "frobnicate"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_code(cli, args, code, text):
    result = cli(*args)
    assert result.code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and text in lines[0]
    assert "Traceback" not in result.stderr


def test_unreadable_image_is_a_runtime_error(cli, tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_text("text, not pixels")
    result = cli("summary", "resnet18", "--image", str(fake))
    assert result.code == 1 and "not an image" in result.stderr


def test_auto_weights_warn_loudly_when_falling_back(cli):
    result = cli("summary", "squeezenet1_1", "--weights", "auto", "--depth", "0")
    assert result.code == 0
    assert "warning:" in result.stderr and "random init" in result.stderr


def test_debug_shows_the_traceback():
    result = run_subprocess("summary", "resnet19", "--debug")
    assert result.code != 0 and "Traceback" in result.stderr
    plain = run_subprocess("summary", "resnet19")
    assert plain.code == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().count("\n") == 0


def test_the_gc_pauses_for_start_up_only(cli, monkeypatch, tmp_path):
    """Off while torch is imported and the model built, on (start-up frozen) after; the
    library's own resolve_model never touches it."""
    import gc

    from vizcli.cli import common
    from vizcli.models import resolve_model

    seen = []
    real_load = common.load_model

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        loaded = real_load(*args, **kwargs)
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return loaded

    monkeypatch.setattr(common, "load_model", spy)
    gc.unfreeze()
    result = cli("kernels", f"{TINY}:tiny_net", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    assert seen[0] is False and seen[1][0] is True and seen[1][1] > 0
    assert gc.isenabled()
    gc.disable()
    try:
        resolve_model(f"{TINY}:tiny_net")
        assert not gc.isenabled()  # a library call leaves the caller's GC as it was
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_task_choices_are_the_model_packages_tasks():
    """--task is spelled out for --help (no torch there); it must follow the models package."""
    from vizcli.cli.models_cmd import Task
    from vizcli.models import TASKS

    assert [t.value for t in Task] == list(TASKS)
