"""``vizcli check``: rules that fail and pass on purpose-built models, with the right exit
codes, lines, JUnit XML (parsed back) and GitHub annotations."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conftest import SAMPLES, TINY, run_subprocess
from vizcli.check import Rules, parse_bytes, parse_count, parse_fraction, read_config
from vizcli.errors import UsageError

CHELSEA = str(SAMPLES / "chelsea.png")
COFFEE = str(SAMPLES / "coffee.png")


def lines(result):
    return [line for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]


def test_a_nan_layer_fails_finite_and_names_it(tmp_path):
    junit = tmp_path / "check.xml"
    result = run_subprocess("check", f"{TINY}:NanNet", CHELSEA, COFFEE, "--finite",
                            "--max-params", "200", "--junit", str(junit))  # fmt: skip
    assert result.code == 1, result.stderr
    params, finite = lines(result)
    # log() is functional: the NaN first shows in the next module's output, 2 images x 3
    assert finite == "FAIL finite: 12 NaN/Inf values (limit 0) (first in head: 6, (output): 6)"
    assert params == "PASS max-params: 127 (limit 200)"  # 3*4*9+4 + 4*3+3
    assert "warning: 1 of 2 rules passed" in result.stderr
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert root.get("tests") == "2" and root.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["max-params", "finite"]
    assert cases[0].find("failure") is None
    assert cases[1].find("failure").get("message") == finite


def test_a_dead_relu_layer_fails_max_dead_units():
    result = run_subprocess("check", f"{TINY}:DeadNet", CHELSEA, "--max-dead-units", "50%")
    assert result.code == 1, result.stderr
    assert lines(result) == [
        "FAIL max-dead-units: 75.0% (limit 50.0%) (relu: 6 of 8 channels never fire on 1 images)"
    ]
    result = run_subprocess("check", f"{TINY}:DeadNet", CHELSEA, "--max-dead-units", "0.8")
    assert result.code == 0 and lines(result)[0].startswith("PASS max-dead-units: 75.0%")
    assert "1 of 1 rules passed" in result.stderr


def test_size_rules_pass_and_fail_with_exact_figures():
    result = run_subprocess("check", "resnet18", "--max-params", "11.7M", "--max-mult-adds",
                            "1.8G", "--max-activation-memory", "1GiB", "--input-shape",
                            "1,3,64,64", "--input-shape", "1,1,64,64")  # fmt: skip
    assert result.code == 1, result.stderr
    assert lines(result)[:4] == [
        "PASS max-params: 11,689,512 (limit 11,700,000)",
        "FAIL max-mult-adds: 1.81 G (limit 1.80 G)",
        "PASS max-activation-memory: 59.82 MB (limit 1.07 GB)",
        "PASS input-shapes 1,3,64,64: runs",
    ]
    assert lines(result)[4].startswith("FAIL input-shapes 1,1,64,64: fails (resnet18 cannot run")


def test_growth_against_a_baseline(tmp_path):
    base = tmp_path / "base.json"
    made = run_subprocess("summary", f"{TINY}:stack", "-i", "1,3,16,16", "-f", "json", "-o",
                          str(base))  # fmt: skip
    assert made.code == 0, made.stderr
    result = run_subprocess("check", f"{TINY}:stack_inserted", "--baseline", str(base),
                            "--max-growth", "10%")  # fmt: skip
    assert result.code == 1
    params, mult_adds = lines(result)
    assert params == "FAIL max-growth (parameters): +43.29% (limit +10.00%) (1,460 -> 2,092)"
    assert mult_adds.startswith("FAIL max-growth (mult-adds): ")
    same = run_subprocess("check", f"{TINY}:stack", "--baseline", str(base))
    assert same.code == 0 and lines(same)[0] == (
        "PASS max-growth (parameters): +0.00% (limit +0.00%) (1,460 -> 1,460)"
    )


def test_rules_from_pyproject_and_flags_win(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.vizcli.check]\nmax-params = "100"\nfinite = true\nimages = ["' + CHELSEA + '"]\n'
    )
    import os
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "vizcli", "check", f"{TINY}:NanNet", *args],
                              capture_output=True, text=True, cwd=tmp_path,
                              env={**os.environ, "COLUMNS": "200"})  # fmt: skip

    first = run()
    assert first.returncode == 1
    assert f"rules from {tmp_path / 'pyproject.toml'}" in first.stderr
    assert [line.split(":")[0] for line in first.stdout.splitlines()] == [
        "FAIL max-params",
        "FAIL finite",
    ]
    second = run("--max-params", "1k")
    assert second.stdout.splitlines()[0] == "PASS max-params: 127 (limit 1,000)"


def test_github_annotations(tmp_path):
    result = run_subprocess("check", f"{TINY}:stack", "--max-params", "1k",
                            env={"GITHUB_ACTIONS": "true"})  # fmt: skip
    assert result.code == 1
    assert result.stdout.splitlines()[-1] == (
        "::error title=vizcli check%3A max-params::FAIL max-params: 1,460 (limit 1,000)"
    )


def test_expected_classes_on_the_trained_network():
    pytest.importorskip("efficientnet_lite_pytorch")
    spec = "examples/efficientnet_lite0.py:efficientnet_lite0"
    result = run_subprocess("check", spec, "--expect", f"{COFFEE}=espresso",
                            "--expect", f"{CHELSEA}=tabby")  # fmt: skip
    assert result.code == 1
    assert lines(result) == [
        "PASS expect coffee.png: espresso (96%) (expected espresso)",
        "FAIL expect chelsea.png: tiger cat (38%) (expected tabby)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--max-params", "25Q"], "--max-params takes a number such as 25M or 4.5G, got '25Q'"),
     (["--finite"], "finite needs images"),
     (["--expect", "cat.png"], "--expect takes IMAGE=CLASS, got 'cat.png'"),
     ([], "no rule to check"),
     (["--max-dead-units", "lots", CHELSEA], "--max-dead-units takes a fraction"),
     (["--config", "{tmp}/bad.toml"], "unknown check rule 'max-parms'")],
)  # fmt: skip
def test_bad_rules_exit_2(cli, tmp_path, args, message):
    (tmp_path / "bad.toml").write_text('[tool.vizcli.check]\nmax-parms = "1M"\n')
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = cli("check", f"{TINY}:stack", *args)
    assert result.code == 2, (result.stdout, result.stderr)
    assert message in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("25M", 25e6), ("4.5G", 4.5e9), ("1,200", 1200), ("800k", 800e3), ("3e6", 3e6)],
)
def test_counts(text, expected):
    assert parse_count(text, "--x") == expected


def test_sizes_and_fractions():
    assert parse_bytes("500MB", "--x") == 500e6 and parse_bytes("2GiB", "--x") == 2 * 2**30
    assert parse_bytes("1024", "--x") == 1024
    assert (
        parse_fraction("5%", "--x") == pytest.approx(0.05) and parse_fraction("0.5", "--x") == 0.5
    )
    with pytest.raises(UsageError, match="must be 0 or more"):
        parse_fraction("-1%", "--x")
    with pytest.raises(UsageError, match="must be 0 or more"):
        parse_fraction("nan", "--x")


def test_config_tables_are_checked(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[tool.vizcli.check]\nexpect = {"a.png" = "cat"}\ninput-shapes = "1,3,8,8"\n')
    with pytest.raises(UsageError, match="input-shapes must be a list of strings"):
        read_config(path, tmp_path)
    path.write_text('[tool.vizcli.check]\nmax-growth = "5%"\nexpect = {"a.png" = "cat"}\n')
    rules, where = read_config(path, tmp_path)
    assert where == str(path) and rules.max_growth == pytest.approx(0.05)
    assert rules.expect == (("a.png", "cat"),)
    assert rules.merged(Rules(max_growth=0.2)).max_growth == 0.2
    assert read_config(None, tmp_path) == (Rules(), None)  # no pyproject.toml up to /


@pytest.mark.slow
def test_the_readmes_ci_script_passes_on_the_trained_network(tmp_path):
    """examples/ci.sh, as the README shows it: every rule holds, JUnit and Markdown written."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("efficientnet_lite_pytorch")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "VIZCLI": str(Path(sys.executable).with_name("vizcli")),
           "OUT": str(tmp_path)}  # fmt: skip
    proc = subprocess.run(["bash", "examples/ci.sh"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("PASS ") == 11 and "FAIL" not in proc.stdout
    suite = ET.parse(tmp_path / "check.xml").getroot()
    assert suite.get("tests") == "11" and suite.get("failures") == "0"
    diff = (tmp_path / "model-diff.md").read_text()
    assert "Same architecture." in diff and "| Parameters | 4,652,008 | 4,652,008 | = |" in diff
