"""``vizcli batch``: every command, run in one process, gives what it gives alone (stdout,
files byte for byte, exit codes, error lines), and the model shared between lines is never
changed by a line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, SAMPLES, TINY, run_subprocess

CHELSEA = str(SAMPLES / "chelsea.png")
MODEL = f"{TINY}:stack"
TIMES = {"seconds", "started", "finished", "wall_time", "created"}  # manifest keys that are clocks


def commands(out: Path) -> list[list[str]]:
    """One line per command, each writing files where it can."""
    return [
        ["summary", MODEL, "-i", "1,3,32,32", "-f", "json", "-o", str(out / "summary.json")],
        ["layers", MODEL, "-f", "json"],
        ["kernels", MODEL, "--out", str(out)],
        ["fmaps", MODEL, CHELSEA, "--size", "32", "--out", str(out)],
        ["hist", MODEL, "-f", "json", "--logdir", str(out / "tb")],
        ["stats", MODEL, CHELSEA, "--size", "32", "-f", "json", "--logdir", str(out / "tb")],
        ["graph", MODEL, "-f", "dot", "--out", str(out)],
        ["cam", MODEL, CHELSEA, "--size", "32", "--layer", "2", "--out", str(out)],
        ["actmax", MODEL, "-l", "2", "--channels", "2", "--steps", "3", "--size", "32",
         "--out", str(out)],
        ["diff", MODEL, f"{TINY}:stack_inserted", "-i", "1,3,16,16", "-f", "json"],
        ["check", MODEL, "--max-params", "2k", "--input-shape", "1,3,16,16"],
        ["models", "resnet*", "-f", "json"],
    ]  # fmt: skip


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but event files (they hold wall times), manifests without
    their clock fields."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or "tfevents" in path.name:
            continue
        data = path.read_bytes()
        if path.name == "manifest.json":
            manifest = json.loads(data.replace(str(folder).encode(), b"OUT"))
            data = json.dumps(_without_clocks(manifest), sort_keys=True).encode()
        found[str(path.relative_to(folder))] = data
    return found


def _without_clocks(value):
    if isinstance(value, dict):
        return {k: _without_clocks(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [_without_clocks(v) for v in value]
    return value


def test_every_command_gives_in_a_batch_what_it_gives_alone(tmp_path):
    alone, together = tmp_path / "alone", tmp_path / "batch"
    alone.mkdir()
    together.mkdir()
    outputs = []
    for args in commands(alone):
        result = run_subprocess(*args)
        assert result.code == 0, (args, result.stderr)
        outputs.append(result.stdout)
    script = tmp_path / "lines.txt"
    lines = [" ".join(_quote(a) for a in args) for args in commands(together)]
    script.write_text("# every command\n\n" + "\n".join(lines) + "\n")
    result = run_subprocess("batch", str(script), timeout=600)
    assert result.code == 0, result.stderr
    assert f"batch: {len(lines)} command lines" in result.stderr
    expected = "".join(outputs).replace(str(alone), str(together))
    assert result.stdout == expected
    assert files(together) == files(alone)
    assert len(files(alone)) >= 12


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def test_errors_name_their_line_and_the_worst_code_wins(tmp_path):
    script = tmp_path / "lines.txt"
    script.write_text(
        f"layers {MODEL}\n"
        "summary nosuchmodel\n"
        f"check {MODEL} --max-params 10\n"
        f"vizcli layers {MODEL} --format yaml\n"
    )
    result = run_subprocess("batch", str(script))
    assert result.code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors[0].startswith("error: line 2: unknown model 'nosuchmodel'")
    assert errors[1].startswith("error: line 4: Invalid value for '--format'")
    assert "FAIL max-params: 1,460 (limit 10)" in result.stdout
    assert result.stdout.count("Name (for --layer)") == 1  # line 1 ran, line 4 did not parse
    fast = run_subprocess("batch", str(script), "--fail-fast")
    assert fast.code == 2 and "line 3" not in fast.stderr and "FAIL" not in fast.stdout


def test_lines_from_standard_input():
    proc = subprocess.run(
        [sys.executable, "-m", "vizcli", "batch", "-"], input=f"check {MODEL} --max-params 1k\n",
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["FAIL max-params: 1,460 (limit 1,000)"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("batch other.txt\n", "line 1: a batch cannot run another batch"),
     ("layers 'unclosed\n", "line 1: cannot split")],
)  # fmt: skip
def test_bad_batch_files(cli, tmp_path, text, message):
    script = tmp_path / "lines.txt"
    script.write_text(text)
    result = cli("batch", str(script))
    assert result.code == 2 and message in result.stderr


def test_the_model_shared_between_lines_is_never_changed(cli, tmp_path):
    """Each model is built once and every later line gets the same object; after each line
    it is exactly as built (weights, flags, requires_grad, .grad, no hooks left)."""
    from tests.tiny_models import stack
    from vizcli import models

    reference = stack().state_dict()
    seen: dict[tuple, object] = {}
    with models.reusing_models():
        for args in commands(tmp_path):
            result = cli(*args)
            assert result.code == 0, (args, result.stderr)
            for key, loaded in models._reused.items():
                model = loaded.model
                assert seen.setdefault(key, model) is model, f"{args[0]} rebuilt {key}"
                if key[4]:
                    continue  # built on the meta device (summary, diff, check): no values
                assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                               for m in model.modules())  # fmt: skip
                assert not any(m.training for m in model.modules())
                assert all(p.requires_grad and p.grad is None for p in model.parameters())
                for name, value in model.state_dict().items():
                    assert torch.equal(value, reference[name]), (args[0], name)
    real = [key for key in seen if key[0] == MODEL and not key[4]]
    assert len(real) == 2 and models._reused is None  # weights auto; graph's default, none
