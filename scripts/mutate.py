"""Mutation testing of vizcli's core, one package at a time (``make mutate [PKG=name]``).

Each package is mutated by mutmut in its own workspace under ``.mutate/<name>/`` against the
test files that exercise it, so one package takes minutes. The score is
killed / (mutants - documented equivalents); equivalent mutants are listed, with one line why,
in docs/TESTING.md as ``- `mutant name`: reason``.

``--sample N`` tests a seeded random sample of N mutants instead of all of them (cam and
explain have over a thousand, each needing seconds of tests on two cores): the score is then
an estimate, printed with its 95% Wilson interval. Mutants already tested in the workspace
keep their result, so repeated samples grow one estimate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutate"
MUTMUT = Path(sys.executable).with_name("mutmut")
COPIED = ["sample_images", "examples", "docs", "README.md"]

# package -> (source files mutated, test files that exercise them; slow sweeps excluded)
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "stats": (
        ["vizcli/tensorstats.py", "vizcli/stats.py", "vizcli/hist.py"],
        [
            "tests/test_stats_oracles.py",
            "tests/test_stats_health.py",
            "tests/test_tensorboard_oracles.py",
            "tests/test_pictures.py",
        ],
    ),
    "images": (
        ["vizcli/images.py", "vizcli/labels.py"],
        [
            "tests/test_images.py",
            "tests/test_image_modes.py",
            "tests/test_labels.py",
            "tests/test_images_oracles.py",
            "tests/test_preprocessing_options.py",
            "tests/test_properties.py",
        ],
    ),
    "hooks": (
        ["vizcli/hooks.py", "vizcli/layers.py", "vizcli/layout.py"],
        [
            "tests/test_layers_hooks.py",
            "tests/test_layer_selection.py",
            "tests/test_layout_cases.py",
            "tests/test_properties.py",
            "tests/test_layout.py",
            "tests/test_cli.py",
        ],
    ),
    "summary": (
        ["vizcli/summary.py", "vizcli/flops.py", "vizcli/memory.py"],
        [
            "tests/test_summary.py",
            "tests/test_summary_oracles.py",
            "tests/test_summary_dtypes.py",
            "tests/test_flops_oracles.py",
            "tests/test_summary_inputs.py",
        ],
    ),
    "pictures": (
        [
            "vizcli/kernels.py",
            "vizcli/fmaps.py",
            "vizcli/draw/grids.py",
            "vizcli/draw/colormaps.py",
        ],
        [
            "tests/test_kernels_oracles.py",
            "tests/test_grids_oracles.py",
            "tests/test_tensorboard_oracles.py",
            "tests/test_pictures.py",
            "tests/test_cli_pictures.py",
            "tests/test_layout.py",
        ],
    ),
    "cam": (  # the methods and metrics: their numbers against pytorch-grad-cam and captum
        [
            "vizcli/cam/base.py",
            "vizcli/cam/methods.py",
            "vizcli/cam/saliency.py",
            "vizcli/cam/metrics.py",
        ],
        [
            "tests/test_cam.py",
            "tests/test_saliency_oracles.py",
            "tests/test_metrics_oracles.py",
            "tests/test_sanity_oracles.py",
        ],
    ),
    "explain": (  # the command's core: layer choice, targets, pictures, the sanity check
        ["vizcli/cam/explain.py", "vizcli/cam/target.py", "vizcli/draw/overlays.py"],
        [
            "tests/test_cam.py",
            "tests/test_cli_cam.py",
            "tests/test_layout.py",
            "tests/test_trained.py",
        ],
    ),
    "graph": (["vizcli/graph.py"], ["tests/test_graph.py"]),
    "actmax": (["vizcli/actmax/*", "vizcli/draw/sheets.py"], ["tests/test_actmax.py"]),
    "models": (
        ["vizcli/models/*"],
        [
            "tests/test_models.py",
            "tests/test_timm.py",
            "tests/test_preprocessing_options.py",
            "tests/test_download.py",
        ],
    ),
    "sinks": (
        ["vizcli/output/sinks.py", "vizcli/output/files.py"],
        [
            "tests/test_output.py",
            "tests/test_sinks_manifest.py",
            "tests/test_files.py",
            "tests/test_tensorboard_oracles.py",
            "tests/test_cli_pictures.py",
            "tests/test_hostile.py",
        ],
    ),
}


def equivalents() -> set[str]:
    """Mutant names documented as equivalent in docs/TESTING.md."""
    text = (ROOT / "docs" / "TESTING.md").read_text(encoding="utf-8")
    return set(re.findall(r"^- `(vizcli\.[^`]+__mutmut_\d+)`", text, flags=re.M))


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(name: str) -> Path:
    sources, tests = TARGETS[name]
    space = WORK / name
    shutil.rmtree(space, ignore_errors=True)
    space.mkdir(parents=True)
    for entry in ["vizcli", "tests", *COPIED]:
        (space / entry).symlink_to(ROOT / entry)
    (space / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        'source_paths = ["vizcli"]\n'
        f"only_mutate = {toml_list(sources)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        'pytest_add_cli_args = ["-q", "-x", "-p", "no:cacheprovider", "-m", "not slow"]\n'
        'process_isolation = "forkserver"\n'
        # CPU-seconds limit = (estimated test time + constant) x 30; the estimate credits a
        # module fixture (the trained network, a 48-step actmax: ~40 CPU-seconds) to one
        # test only, so without room here every other test's mutants "time out" unseen
        "timeout_constant = 10.0\n"
        f"also_copy = {toml_list(COPIED)}\n"
        "[tool.pytest.ini_options]\n"
        'markers = ["slow: slower tests"]\n',
        encoding="utf-8",
    )
    return space


def results(space: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"],
        cwd=space,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.findall(r"^\s*(vizcli\.\S+__mutmut_\d+): (.+)$", out, flags=re.M)
    return {mutant: status.strip() for mutant, status in found}


def mutmut(space: Path, *args: str, check: bool = True) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([str(MUTMUT), *args], cwd=space, env=env, check=check,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def generated(name: str) -> Path:
    """A workspace whose mutants match today's sources and whose tests' coverage is collected
    (kept between runs: mutmut redoes only changed functions and new tests)."""
    space = WORK / name
    if not (space / "mutants" / "mutmut-stats.json").exists():
        space = prepare(name)
    # mutmut generates the mutants and maps tests to functions before it filters by name;
    # a name matching nothing stops it right there (with an assertion, hence check=False)
    mutmut(space, "run", "--max-children", "1", "vizcli.no_such_mutant", check=False)
    return space


def pick(space: Path, status: dict[str, str], size: int) -> list[str]:
    """A seeded random sample of mutant names, saved in the workspace at first use, so that
    later edits (which add, drop or rename mutants) do not redraw it: mutants of changed
    functions keep their place and are tested again."""
    saved = space / f"sample-{size}.json"
    if saved.exists():
        return [m for m in json.loads(saved.read_text(encoding="utf-8")) if m in status]
    names = sorted(status)
    chosen = sorted(random.Random(0).sample(names, min(size, len(names))))
    saved.write_text(json.dumps(chosen, indent=1), encoding="utf-8")
    return chosen


def wilson(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    if not total:
        return 0.0, 100.0
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return round(100 * (centre - half), 1), round(100 * (centre + half), 1)


def run(
    name: str, children: int, report_only: bool = False, sample: int | None = None,
    again: bool = False,
) -> dict:  # fmt: skip
    space = WORK / name
    started = time.monotonic()
    if sample:
        space = generated(name)
        before = results(space)
        chosen = pick(space, before, sample)
        redo = {"not checked", *(_MISSED | {"timeout"} if again else ())}
        todo = [m for m in chosen if before[m] in redo] if not report_only else []
        if todo:
            mutmut(space, "run", "--max-children", str(children), *todo)
    elif not report_only:
        space = prepare(name)
        mutmut(space, "run", "--max-children", str(children))
    everything = results(space)
    status = {m: everything[m] for m in pick(space, everything, sample)} if sample else everything
    equivalent = equivalents() & set(status)
    killed = sum(s in ("killed", "timeout", "caught by type check") for s in status.values())
    missed = sorted(m for m, s in status.items() if m not in equivalent and s in _MISSED)
    counted = len(status) - len(equivalent)
    score = {
        "package": name,
        "mutants": len(status),
        "killed": killed,
        "equivalent": len(equivalent),
        "survived": len(missed),
        "score": round(100 * killed / counted, 1) if counted else 100.0,
        "seconds": round(time.monotonic() - started),
        "survivors": missed,
    }
    if sample:
        score["sampled_from"] = len(everything)
        score["interval"] = wilson(killed, counted)
    (space / "score.json").write_text(json.dumps(score, indent=2), encoding="utf-8")
    return score


_MISSED = {"survived", "no tests", "suspicious", "skipped", "segfault"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help=f"any of: {', '.join(TARGETS)} (all)")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument(
        "--report", action="store_true", help="score the last run's results without running"
    )
    parser.add_argument("--sample", type=int, help="test a seeded random sample of N mutants")
    parser.add_argument(
        "--again",
        action="store_true",
        help="with --sample: test survivors and timeouts again (new tests, a quiet machine)",
    )
    args = parser.parse_args()
    unknown = [p for p in args.packages if p not in TARGETS]
    if unknown:
        parser.error(f"unknown package(s): {', '.join(unknown)}")
    scores = []
    for name in args.packages or list(TARGETS):
        score = run(name, args.children, args.report, args.sample, args.again)
        scores.append(score)
        sampled = ""
        if "sampled_from" in score:
            low, high = score["interval"]
            sampled = f"  sample of {score['sampled_from']}, 95% interval {low}-{high}%"
        print(
            f"{name:9} {score['score']:5.1f}%  killed {score['killed']}/{score['mutants']}"
            f"  equivalent {score['equivalent']}  missed {score['survived']}"
            f"  ({score['seconds']} s){sampled}",
            flush=True,
        )
        for mutant in score["survivors"]:
            print(f"    {mutant}")
            if args.show:
                subprocess.run([str(MUTMUT), "show", mutant], cwd=WORK / name, check=False)
    total = sum(s["mutants"] - s["equivalent"] for s in scores)
    killed = sum(s["killed"] for s in scores)
    if total:
        print(f"total     {100 * killed / total:5.1f}%  killed {killed}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
