"""`make bench`: vizcli against its floors and peers, measured side by side in one run.

Each comparison runs the commands interleaved, several times, and reports median wall time
(and peak RSS of the child process). Targets come from the issues; the last column says
whether this machine met them today.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
VIZCLI = [PY, "-m", "vizcli"]

FLOOR_RESNET50 = (
    "import torch, torchvision\n"
    "m = torchvision.models.resnet50().eval()\n"
    "with torch.no_grad():\n    m(torch.randn(1, 3, 224, 224))\n"
)
TORCHINFO_RESNET50 = (
    "import torchinfo, torchvision\n"
    "print(torchinfo.summary(torchvision.models.resnet50(), input_size=(1, 3, 224, 224)))\n"
)
FLOOR_VGG16 = (
    "import torch, torchvision\n"
    "m = torchvision.models.vgg16().eval()\n"
    "with torch.no_grad():\n    m(torch.randn(1, 3, 224, 224))\n"
)
SAMPLE = str(ROOT / "sample_images" / "chelsea.png")
FLOOR_GRAPH_RESNET50 = (
    "import torch, torchvision\n"
    "m = torchvision.models.resnet50().eval()\n"
    "with torch.no_grad():\n    torch.jit.trace(m, torch.randn(1, 3, 224, 224))\n"
)
TORCHINFO_VIT_H = (
    "import torchinfo, torchvision\n"
    "print(torchinfo.summary(torchvision.models.vit_h_14(), input_size=(1, 3, 224, 224)))\n"
)


@dataclass
class Run:
    seconds: float
    peak_mb: float


def run_once(cmd: list[str]) -> Run:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}"
        )
    return Run(elapsed, usage.ru_maxrss / 1024)


def measure(commands: dict[str, list[str]], repeats: int) -> dict[str, Run]:
    """Interleave the commands `repeats` times; median time, max peak RSS."""
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            runs[name].append(run_once(cmd))
    return {
        name: Run(statistics.median(r.seconds for r in rs), max(r.peak_mb for r in rs))
        for name, rs in runs.items()
    }


def report(title: str, results: dict[str, Run]) -> None:
    print(f"\n{title}")
    for name, run in results.items():
        print(f"  {name:<44} {run.seconds:7.3f} s  {run.peak_mb:8.0f} MB peak RSS")


def check(label: str, value: float, target: float, unit: str = "x", at_least: bool = False) -> bool:
    ok = value >= target if at_least else value <= target
    sign = ">=" if at_least else "<="
    verdict = "ok" if ok else "MISSED"
    print(f"  {label:<52} {value:6.2f}{unit}  target {sign} {target}{unit}  {verdict}")
    return ok


def main() -> int:
    repeats = int(os.environ.get("BENCH_REPEATS", "5"))
    results = []
    print(f"vizcli benchmarks ({repeats} interleaved repeats, median wall time)")

    help_runs = measure(
        {
            "vizcli --help": [*VIZCLI, "--help"],
            "python -c 'import typer, rich'": [PY, "-c", "import typer, rich"],
        },
        repeats * 2,
    )
    report("Start-up", help_runs)
    ratio = help_runs["vizcli --help"].seconds / help_runs["python -c 'import typer, rich'"].seconds
    results.append(check("vizcli --help / import typer, rich", ratio, 1.5))

    summary_runs = measure(
        {
            "vizcli summary resnet50": [*VIZCLI, "summary", "resnet50"],
            "floor: import + build resnet50 + forward": [PY, "-c", FLOOR_RESNET50],
            "torchinfo script, resnet50": [PY, "-c", TORCHINFO_RESNET50],
            "floor with the GC off (as vizcli runs)": [
                PY,
                "-c",
                "import gc; gc.disable()\n" + FLOOR_RESNET50,
            ],
        },
        repeats,
    )
    report("summary resnet50", summary_runs)
    ours = summary_runs["vizcli summary resnet50"].seconds
    results.append(
        check(
            "summary resnet50 / floor",
            ours / summary_runs["floor: import + build resnet50 + forward"].seconds,
            1.05,
        )
    )
    results.append(
        check(
            "summary resnet50 / torchinfo script",
            ours / summary_runs["torchinfo script, resnet50"].seconds,
            1.0,
        )
    )
    gc_off = ours / summary_runs["floor with the GC off (as vizcli runs)"].seconds
    print(f"  {'(information) summary resnet50 / floor with GC off':<52} {gc_off:6.2f}x")

    vit_runs = measure(
        {
            "vizcli summary vit_h_14": [*VIZCLI, "summary", "vit_h_14"],
            "torchinfo script, vit_h_14 (real model)": [PY, "-c", TORCHINFO_VIT_H],
        },
        1,
    )
    report("summary vit_h_14 (memory)", vit_runs)
    results.append(
        check(
            "vizcli summary vit_h_14 peak RSS",
            vit_runs["vizcli summary vit_h_14"].peak_mb / 1024,
            1.2,
            " GB",
        )
    )

    results.extend(bench_fmaps(repeats))
    results.append(bench_graph(repeats))
    results.extend(bench_cam(repeats))
    results.extend(bench_actmax())
    results.extend(bench_batch())

    print(f"\n{sum(results)} of {len(results)} targets met")
    return 0


def bench_fmaps(repeats: int) -> list[bool]:
    """fmaps vgg16 on every conv layer against its floor; TensorBoard against PNG writing."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        runs: dict[str, list[Run]] = {"ours": [], "floor": []}
        for index in range(max(2, repeats // 2)):
            out = Path(tmp) / f"out{index}"
            runs["ours"].append(run_once([*VIZCLI, "fmaps", "vgg16", SAMPLE, "--weights", "none",
                                          "--out", str(out), "--run", "r"]))  # fmt: skip
            runs["floor"].append(run_once([PY, "-c", FLOOR_VGG16]))
        grids = [p for p in sorted((Path(tmp) / "out0" / "r").glob("*.png"))]
        encode_s = _png_encode_seconds(grids)
        tb_s, png_s, stock_s = _sink_seconds(grids)
    ours = Run(
        statistics.median(r.seconds for r in runs["ours"]), max(r.peak_mb for r in runs["ours"])
    )
    floor = Run(
        statistics.median(r.seconds for r in runs["floor"]), max(r.peak_mb for r in runs["floor"])
    )
    report(
        f"fmaps vgg16 (13 conv layers, {len(grids)} PNGs incl. the input)",
        {
            "vizcli fmaps vgg16 IMAGE --out DIR": ours,
            "floor: import + build vgg16 + forward": floor,
        },
    )
    print(f"  {'PIL PNG encoding of the same grids (level 1)':<44} {encode_s:7.3f} s")
    print(f"  {'TensorBoard add_image, stock (pure-Python CRC)':<44} {stock_s:7.3f} s")
    print(f"  {'vizcli TensorBoard sink (C CRC32C)':<44} {tb_s:7.3f} s")
    print(f"  {'vizcli PNG sink':<44} {png_s:7.3f} s")
    return [
        check(
            "fmaps vgg16 / (floor + PNG encoding)", ours.seconds / (floor.seconds + encode_s), 1.15
        ),
        check("fmaps vgg16 peak RSS - floor peak RSS", ours.peak_mb - floor.peak_mb, 300, " MB"),
        check("TensorBoard sink / PNG sink, same grids", tb_s / png_s, 1.2),
    ]


def bench_graph(repeats: int) -> bool:
    """vizcli graph resnet50 (TensorBoard graph + graph.dot) against one traced forward."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "vizcli graph resnet50": [*VIZCLI, "graph", "resnet50", "--logdir", tmp],
            "floor: import + build resnet50 + jit.trace": [PY, "-c", FLOOR_GRAPH_RESNET50],
        }
        runs = measure(commands, max(2, repeats // 2))
    report("graph resnet50", runs)
    ratio = (
        runs["vizcli graph resnet50"].seconds
        / runs["floor: import + build resnet50 + jit.trace"].seconds
    )
    return check("graph resnet50 / floor", ratio, 1.3)


def _helper(*args: str) -> dict:
    import json

    proc = subprocess.run(
        [PY, str(ROOT / "bench" / "cam_bench.py"), *args], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        raise SystemExit(f"cam_bench {' '.join(args)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_cam(repeats: int) -> list[bool]:
    """Grad-CAM and Score-CAM against pytorch-grad-cam and the floor, resnet50 on the CPU."""
    import tempfile

    import numpy as np

    results = []
    print("\ncam (resnet50, random weights, chelsea.png at 224x224)")
    for batch in (1, 16):
        ms = _helper("gradcam", str(batch))
        print(f"  Grad-CAM batch {batch:>2}: vizcli {ms['ours_ms']:.0f} ms/image, pytorch-grad-cam "
              f"{ms['theirs_ms']:.0f} ms/image, floor (forward + autograd.grad at layer4) "
              f"{ms['floor_ms']:.0f} ms/image")  # fmt: skip
        speedup = ms["theirs_ms"] / ms["ours_ms"]
        results.append(
            check(f"Grad-CAM b{batch}: speed-up over pytorch-grad-cam", speedup, 2.5, at_least=True)
        )
        results.append(
            check(f"Grad-CAM b{batch}: vizcli / floor", ms["ours_ms"] / ms["floor_ms"], 1.1)
        )
    if os.environ.get("BENCH_SCORECAM", "1") != "0":  # pytorch-grad-cam needs ~3 minutes here
        ours, theirs = _helper("scorecam", "ours"), _helper("scorecam", "theirs")
        a = np.load("/tmp/vizcli_bench_scorecam_ours.npy")
        b = np.load("/tmp/vizcli_bench_scorecam_theirs.npy")
        import cv2

        a = cv2.resize(np.float32((a - a.min()) / (a.max() - a.min() + 1e-12)), b.shape[::-1])
        a = (a - a.min()) / (a.max() + 1e-7)
        corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
        print(f"  Score-CAM, 1 image: vizcli {ours['seconds']:.1f} s, {ours['peak_mb']:.0f} MB "
              f"peak; pytorch-grad-cam {theirs['seconds']:.1f} s, {theirs['peak_mb']:.0f} MB "
              f"peak; map correlation {corr:.5f}")  # fmt: skip
        speedup = theirs["seconds"] / ours["seconds"]
        results.append(
            check("Score-CAM: speed-up over pytorch-grad-cam", speedup, 1.5, at_least=True)
        )
        results.append(check("Score-CAM: vizcli peak RSS", ours["peak_mb"], 1024, " MB"))
    with tempfile.TemporaryDirectory() as tmp:
        runs: dict[str, list[Run]] = {"ours": [], "floor": []}
        for index in range(max(2, repeats // 2)):
            runs["ours"].append(run_once([*VIZCLI, "cam", "resnet50", SAMPLE, "--weights", "none",
                                          "--out", str(Path(tmp) / str(index))]))  # fmt: skip
            runs["floor"].append(run_once([PY, str(ROOT / "bench" / "cam_bench.py"), "floor"]))
        pngs = sorted((Path(tmp) / "0").glob("*/*.png"))
        encode_s = _png_encode_seconds(pngs)
    ours_s = statistics.median(r.seconds for r in runs["ours"])
    floor_s = statistics.median(r.seconds for r in runs["floor"])
    print(f"  vizcli cam resnet50 IMAGE: {ours_s:.2f} s; floor (import, build, forward, gradient) "
          f"{floor_s:.2f} s + PNG writing {encode_s:.2f} s")  # fmt: skip
    results.append(
        check("cam resnet50 / (floor + PNG writing)", ours_s / (floor_s + encode_s), 1.15)
    )
    return results


def bench_actmax() -> list[bool]:
    """256 steps for 8 channels of EfficientNet-Lite0's _blocks.8 at 224x224, as one batch:
    `vizcli actmax` (PNGs and manifest written) against torch-lucent's render_vis."""
    import json
    import tempfile

    steps = os.environ.get("BENCH_ACTMAX_STEPS", "256")
    spec = str(ROOT / "examples" / "efficientnet_lite0.py") + ":efficientnet_lite0"
    with tempfile.TemporaryDirectory() as tmp:
        lucent_json = Path(tmp) / "lucent.json"
        ours = run_once([*VIZCLI, "actmax", spec, "-l", "_blocks.8", "--channels", "8", "--steps",
                         steps, "--out", tmp, "--run", "r", "-q"])  # fmt: skip
        theirs = run_once([PY, str(ROOT / "bench" / "actmax_bench.py"), "lucent", steps,
                           str(lucent_json)])  # fmt: skip
        manifest = json.loads((Path(tmp) / "r" / "manifest.json").read_text())
        ours_final = [t["final"] for t in manifest["actmax"]["targets"]]
        lucent_final = json.loads(lucent_json.read_text())["final"]
    report(
        f"actmax EfficientNet-Lite0 _blocks.8, 8 channels, {steps} steps, 224x224",
        {"vizcli actmax": ours, "torch-lucent render_vis": theirs},
    )
    print(f"  {'channel means reached, vizcli (median)':<44} {statistics.median(ours_final):7.2f}")
    print(f"  {'channel means reached, Lucent (median)':<44} "
          f"{statistics.median(lucent_final):7.2f}")  # fmt: skip
    return [
        check("actmax: speed-up over torch-lucent", theirs.seconds / ours.seconds, 1.5,
              at_least=True),
        check("actmax: peak RSS / torch-lucent's", ours.peak_mb / theirs.peak_mb, 1.0),
    ]  # fmt: skip


def batch_lines(model: str, out: str) -> list[list[str]]:
    """Ten inspections of one model, as a CI script would run them (the eight the issue names,
    and the CI pair: check and diff against the saved baseline)."""
    return [
        ["summary", model],
        ["layers", model],
        ["kernels", model, "--layer", "_conv_stem", "--out", out],
        ["fmaps", model, SAMPLE, "--layer", "_conv_stem,_blocks.8._project_conv", "--out", out],
        ["hist", model, "--logdir", out],
        ["stats", model, SAMPLE, "--type", "Conv2d", "-f", "json", "--logdir", out],
        ["graph", model, "-f", "dot", "--out", out],
        ["cam", model, SAMPLE, "--out", out],
        ["check", model, "--max-params", "10M", "--input-shape", "1,3,224,224"],
        [
            "diff",
            str(ROOT / "examples" / "efficientnet_lite0.summary.json"),
            model,
            "-f",
            "markdown",
        ],
    ]


def bench_batch() -> list[bool]:
    """`vizcli batch` of ten commands on the trained EfficientNet-Lite0 against the same ten
    run alone, one process each (interleaved, median of three)."""
    import shlex
    import tempfile

    model = str(ROOT / "examples" / "efficientnet_lite0.py") + ":efficientnet_lite0"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "lines.txt"
        script.write_text("\n".join(shlex.join(a) for a in batch_lines(model, tmp)) + "\n")
        commands = {args[0]: [*VIZCLI, *args] for args in batch_lines(model, tmp)}
        runs = measure({**commands, "batch": [*VIZCLI, "batch", str(script)]}, 3)
    together = runs.pop("batch")
    alone = runs
    slowest = max(alone, key=lambda name: alone[name].seconds)
    total = sum(r.seconds for r in alone.values())
    report("batch: ten commands on EfficientNet-Lite0", {
        **{f"vizcli {name} alone": run for name, run in alone.items()},
        "vizcli batch (the ten in one process)": together,
    })  # fmt: skip
    return [
        check(f"batch / slowest alone ({slowest})", together.seconds / alone[slowest].seconds,
              1.5),
        check("batch / the ten as separate processes", together.seconds / total, 0.3),
    ]  # fmt: skip


def _png_encode_seconds(paths: list[Path]) -> float:
    import io

    import numpy as np
    from PIL import Image

    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        for array in arrays:
            Image.fromarray(array).save(io.BytesIO(), format="PNG", compress_level=1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sink_seconds(paths: list[Path]) -> tuple[float, float, float]:
    """Median seconds to write the grids: vizcli TB sink, vizcli PNG sink, stock add_image."""
    import tempfile

    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from torch.utils.tensorboard import SummaryWriter

    from vizcli import artifacts
    from vizcli.output.sinks import PngSink, TensorBoardSink

    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]

    def timed(make_sink) -> float:
        times = []
        for _ in range(3):
            with tempfile.TemporaryDirectory() as tmp:
                sink = make_sink(Path(tmp))
                start = time.perf_counter()
                for i, array in enumerate(arrays):
                    sink.write(artifacts.Image(f"img{i}", array))
                sink.close()
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    class Stock:  # torch's SummaryWriter as the seeds use it, before vizcli patches the CRC
        def __init__(self, folder: Path) -> None:
            self.writer = SummaryWriter(str(folder))

        def write(self, item: artifacts.Image) -> None:
            self.writer.add_image(item.tag, item.pixels, 0, dataformats="HWC")

        def close(self) -> None:
            self.writer.close()

    stock = timed(Stock)
    return timed(TensorBoardSink), timed(PngSink), stock


if __name__ == "__main__":
    sys.exit(main())
