"""Every subcommand into one logdir, then the real TensorBoard server's HTTP API serves it all."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from io import BytesIO

import pytest
from PIL import Image

from tests.conftest import SAMPLES

CHELSEA = str(SAMPLES / "chelsea.png")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(base: str, path: str, **query: str) -> bytes:
    url = base + path + ("?" + urllib.parse.urlencode(query) if query else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.mark.slow
def test_real_tensorboard_serves_what_vizcli_wrote(cli, tmp_path):
    logdir = tmp_path / "runs"
    commands = [
        ["fmaps", "resnet18", CHELSEA, "--size", "64", "--layer", "conv1,layer4.1.conv2"],
        ["kernels", "resnet18", "--layer", "conv1"],
        ["hist", "resnet18", CHELSEA],
        ["stats", "resnet18", CHELSEA, "--type", "Conv2d"],
        ["graph", "resnet18", "--input", "1,3,64,64"],
        ["cam", "resnet18", CHELSEA, "--size", "64"],
    ]
    for args in commands:
        result = cli(*args, "--logdir", str(logdir))
        assert result.code == 0, (args, result.stderr)
    manifests = {p.parent.name: json.loads(p.read_text()) for p in logdir.glob("*/manifest.json")}
    assert set(manifests) == {
        "fmaps-resnet18",
        "kernels-resnet18",
        "hist-resnet18",
        "stats-resnet18",
        "graph-resnet18",
        "cam-resnet18",
    }

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--load_fast",
            "false",
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        runs: list[str] = []
        while time.time() < deadline and set(runs) != set(manifests):
            try:
                runs = json.loads(_get(base, "/data/runs"))
                images = json.loads(_get(base, "/data/plugin/images/tags"))
                if set(runs) == set(manifests) and len(images) == 3:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert set(runs) == set(manifests)

        images = json.loads(_get(base, "/data/plugin/images/tags"))
        scalars = json.loads(_get(base, "/data/plugin/scalars/tags"))
        histograms = json.loads(_get(base, "/data/plugin/histograms/tags"))
        texts = json.loads(_get(base, "/data/plugin/text/tags"))
        graphs = json.loads(_get(base, "/data/plugin/graphs/info"))
        for run, manifest in manifests.items():
            written = manifest["artifacts"]
            expect = {r["tag"] for r in written if r["kind"] == "image"}
            assert set(images.get(run, {})) == expect, run
            expect = {r["tag"] for r in written if r["kind"] == "scalar"}
            assert set(scalars.get(run, {})) == expect, run
            expect = {r["tag"] for r in written if r["kind"] == "histogram"}
            assert set(histograms.get(run, {})) == expect, run
            assert "vizcli/run/text_summary" in texts.get(run, []), run
            # every image is served with the size vizcli reported
            for record in (r for r in written if r["kind"] == "image"):
                listing = json.loads(
                    _get(base, "/data/plugin/images/images", run=run, tag=record["tag"], sample="0")
                )
                served = next(e for e in listing if e["step"] == record["step"])
                png = _get(base, "/data/plugin/images/individualImage?" + served["query"])
                with Image.open(BytesIO(png)) as image:
                    assert image.size == (record["width"], record["height"])
        assert graphs["graph-resnet18"]["run_graph"] is True  # the add_graph GraphDef
        graph_text = _get(base, "/data/plugin/graphs/graph", run="graph-resnet18")
        assert graph_text.count(b'op: "aten::_convolution"') == 20
        counts = sum(
            1 for m in manifests.values() for r in m["artifacts"] if r["kind"] == "histogram"
        )
        assert counts == 2 * 62  # resnet18: 62 parameter tensors, weights and gradients
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.slow
def test_board_prints_the_address_and_serves(tmp_path):
    from tests.conftest import ROOT

    (tmp_path / "runs").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vizcli", "board", str(tmp_path / "runs"), "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        line = proc.stderr.readline()
        assert "TensorBoard for" in line and "http://127.0.0.1:" in line
        url = line.split(" at ")[1].split(" ")[0]
        assert json.loads(_get(url.rstrip("/"), "/data/runs")) == []
    finally:
        proc.terminate()
        proc.wait(timeout=20)
