"""Hostile and unlucky situations, through the real CLI in subprocesses: special output files,
concurrent runs, stalled networks, full disks, SIGTERM, huge sizes, odd checkpoints, user code
that prints, exits or shadows modules. Each one failed before its fix."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.conftest import ROOT, SAMPLES, TINY, run_subprocess
from tests.tiny_models import TinyNet

CHELSEA = str(SAMPLES / "chelsea.png")
MODEL = f"{TINY}:TinyNet"
pytestmark = pytest.mark.slow


def one_error(result, code: int, text: str) -> None:
    assert result.code == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], result.stderr


def test_force_writes_through_devices_and_follows_links(tmp_path):
    result = run_subprocess("summary", MODEL, "-f", "json", "-o", "/dev/null", "--force")
    assert result.code == 0, result.stderr
    assert Path("/dev/null").is_char_device()
    target = tmp_path / "real.json"
    target.write_text("old")
    (tmp_path / "link.json").symlink_to(target)
    result = run_subprocess("summary", MODEL, "-f", "json", "-o", str(tmp_path / "link.json"),
                            "--force")  # fmt: skip
    assert result.code == 0, result.stderr
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads(target.read_text())["model"]["name"] == "TinyNet"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = run_subprocess("summary", MODEL, "-f", "json", "-o", str(fifo))
    reader.join(timeout=30)
    assert result.code == 0, result.stderr
    assert fifo.exists() and json.loads(received[0])["model"]["name"] == "TinyNet"


def test_four_concurrent_runs_into_the_same_folders(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        Image.open(CHELSEA).resize((64, 64)).save(images / f"cat{i}.png")
    out, logdir = tmp_path / "out", tmp_path / "tb"
    out.mkdir()
    squatter = out / ".fmaps-TinyNet.partial"  # a user's folder that merely looks like staging
    squatter.mkdir()
    (squatter / "mine.txt").write_text("keep")
    env = {**os.environ, "COLUMNS": "120"}
    argv = [sys.executable, "-m", "vizcli", "fmaps", MODEL, str(images), "--out", str(out),
            "--logdir", str(logdir), "--size", "32"]  # fmt: skip
    procs = [subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]  # fmt: skip
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    runs = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert len(runs) == 4 and len(set(runs)) == 4
    for run in runs:
        manifest = json.loads((out / run / "manifest.json").read_text())
        listed = [a["file"] for a in manifest["artifacts"] if "file" in a]
        assert listed and all((out / run / name).is_file() for name in listed)
        events = list((logdir / run).glob("events.out.tfevents.*"))
        assert len(events) == 1  # one writer per run folder, nobody else's file
    assert (squatter / "mine.txt").read_text() == "keep"
    assert not [p for p in logdir.iterdir() if p.name.startswith(".")]


class _Silent:
    """A TCP server on loopback that accepts connections and never answers."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self.sock.getsockname()[1]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_a_stalled_network_gives_up_in_bounded_time(isolated_torch_home):
    with _Silent() as port:
        proxy = f"http://127.0.0.1:{port}"
        env = {"https_proxy": proxy, "HTTPS_PROXY": proxy, "VIZCLI_OFFLINE": "0",
               "VIZCLI_DOWNLOAD_TIMEOUT": "2"}  # fmt: skip
        started = time.monotonic()
        auto = run_subprocess("summary", "squeezenet1_1", "--weights", "auto", env=env)
        elapsed = time.monotonic() - started
        assert auto.code == 0, auto.stderr
        assert "downloading SqueezeNet1_1_Weights.IMAGENET1K_V1" in auto.stderr
        assert "could not download" in auto.stderr and "using random init" in auto.stderr
        assert elapsed < 30
        strict = run_subprocess("summary", "squeezenet1_1", "--weights", "DEFAULT", env=env)
        one_error(strict, 1, "could not download")
    leftovers = list((isolated_torch_home / "hub").rglob("*")) if (
        isolated_torch_home / "hub").exists() else []  # fmt: skip
    assert not [p for p in leftovers if p.is_file()]


def test_an_unreachable_hugging_face_hub_is_a_quick_warning():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once this closes
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_OFFLINE": "0",
           "VIZCLI_OFFLINE": "0"}  # fmt: skip
    result = run_subprocess("summary", "timm/resnet18", "--weights", "auto", env=env)
    assert result.code == 0, result.stderr
    assert "cannot be reached; using random init" in result.stderr


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_is_one_error_and_leaves_nothing(tmp_path):
    """Writes fail mid-run (RLIMIT_FSIZE stands in for a full disk): clean up, one line."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.open(CHELSEA).save(images / f"cat{i}.png")
    logdir = tmp_path / "tb"
    proc = subprocess.run(
        [sys.executable, "-m", "vizcli", "fmaps", "resnet18", str(images), "--weights", "none",
         "--logdir", str(logdir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size(20_000),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception in thread" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "File too large" in errors[0], proc.stderr
    assert not logdir.exists()  # the folder was ours, and nothing is left in it


def test_board_lists_finished_runs_only(tmp_path):
    import urllib.request

    runs = tmp_path / "runs"
    done = run_subprocess("kernels", MODEL, "--logdir", str(runs))
    assert done.code == 0, done.stderr
    (runs / "kernels-TinyNet").rename(runs / ".killed-run.partial")  # as SIGKILL leaves it
    done = run_subprocess("kernels", MODEL, "--logdir", str(runs))
    assert done.code == 0, done.stderr
    board = subprocess.Popen(
        [sys.executable, "-m", "vizcli", "board", str(runs), "--port", "0"],
        cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        url = ""
        deadline = time.time() + 60
        while time.time() < deadline and not url:
            line = board.stderr.readline()
            assert "ignoring" in line or "TensorBoard for" in line or not line, line
            if "http://" in line:
                url = line.split(" at ")[1].split(" ")[0]
        listed = []
        while time.time() < deadline:
            with urllib.request.urlopen(url + "data/runs", timeout=5) as response:
                listed = json.loads(response.read())
            if listed:
                break
            time.sleep(0.5)
        assert listed == ["kernels-TinyNet/."]  # logdir_spec names a run folder NAME/.
    finally:
        board.terminate()
        board.wait(timeout=30)


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        (["fmaps", MODEL, CHELSEA, "--size", "100000"], 2, "120.00 GB"),
        (["fmaps", MODEL, CHELSEA, "--cell-size", "100000"], 2, "megapixels"),
        (["kernels", MODEL, "--cell-size", "100000"], 2, "megapixels"),
        (["graph", MODEL, "--input", "1,3,100000,100000"], 2, "VIZCLI_MAX_INPUT_MB"),
        (["summary", MODEL, "--device", "cpu", "--weights", "{ckpt}", "--input",
          "8,3,30000,30000"], 2, "over the 512 MB limit"),
        (["fmaps", MODEL, CHELSEA, "--out", "{tmp}/same", "--logdir", "{tmp}/same"], 2,
         "same folder"),
        (["stats", MODEL, CHELSEA, "--dead", "nan"], 2, "--dead"),
        (["board", "{tmp}", "--host", "no.such.host.invalid"], 2, "--host"),
        (["summary", MODEL, "--weights", "https://example.com/w.pth"], 2, "not a URL"),
        (["fmaps", f"{TINY}:TwoInputs", CHELSEA], 2, "takes 2 inputs"),
        (["cam", f"{TINY}:TwoInputs", CHELSEA], 2, "takes 2 inputs"),
        (["stats", f"{TINY}:TwoInputs", CHELSEA], 2, "takes 2 inputs"),
        (["cam", f"{TINY}:ReturnsNone", CHELSEA], 1, "returned NoneType"),
        (["stats", f"{TINY}:ReturnsNone", CHELSEA], 1, "returned NoneType"),
        (["summary", f"{TINY}:exits"], 1, "sys.exit(3)"),
    ],
    ids=["size", "fmaps cell", "kernels cell", "graph input", "summary real input",
         "out is logdir", "nan threshold", "board host", "url weights", "fmaps two inputs",
         "cam two inputs", "stats two inputs", "cam none", "stats none", "sys.exit"],
)  # fmt: skip
def test_refused_up_front_with_one_line(tmp_path, argv, code, text):
    ckpt = tmp_path / "tiny.pth"
    torch.save(TinyNet().state_dict(), ckpt)
    args = [a.replace("{ckpt}", str(ckpt)).replace("{tmp}", str(tmp_path)) for a in argv]
    if args[0] in ("fmaps", "cam", "stats", "kernels") and "--out" not in args:
        args += ["--logdir", str(tmp_path / "tb")]
    one_error(run_subprocess(*args), code, text)
    assert not (tmp_path / "tb").exists() and not (tmp_path / "same").exists()


def _zip_bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/data/0", bytes(300_000_000))


def test_checkpoints_that_are_valid_odd_or_hostile(tmp_path):
    state = TinyNet().state_dict()
    from torchvision.models import resnet18

    legacy = OrderedDict((k, v) for k, v in resnet18().state_dict().items()
                         if not k.endswith("num_batches_tracked"))  # fmt: skip
    torch.save(legacy, tmp_path / "legacy.pth")
    ok = run_subprocess("summary", "resnet18", "--weights", str(tmp_path / "legacy.pth"))
    assert ok.code == 0, ok.stderr
    torch.save({i: v for i, v in enumerate(state.values())}, tmp_path / "intkeys.pth")
    one_error(run_subprocess("summary", MODEL, "--weights", str(tmp_path / "intkeys.pth")), 1,
              "not parameter names")  # fmt: skip
    os.mkfifo(tmp_path / "fifo.pth")
    one_error(run_subprocess("summary", MODEL, "--weights", str(tmp_path / "fifo.pth")), 2,
              "not a regular file")  # fmt: skip
    _zip_bomb(tmp_path / "bomb.pth")
    assert (tmp_path / "bomb.pth").stat().st_size < 1_000_000
    one_error(run_subprocess("summary", MODEL, "--weights", str(tmp_path / "bomb.pth")), 1,
              "would inflate to 0.3 GB")  # fmt: skip
    (tmp_path / "w.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    one_error(run_subprocess("summary", MODEL, "--weights", str(tmp_path / "w.safetensors")), 1,
              "safetensors")  # fmt: skip


def test_a_read_only_torch_home_falls_back_with_the_documented_warning():
    result = run_subprocess("summary", "squeezenet1_1", "--weights", "auto",
                            env={"TORCH_HOME": "/proc/vizcli", "VIZCLI_OFFLINE": "0"})  # fmt: skip
    assert result.code == 0, result.stderr
    assert "cannot create /proc/vizcli" in result.stderr and "using random init" in result.stderr


def test_files_beside_a_factory_do_not_shadow_vizcli(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "nets.py").write_text(Path(TINY).read_text())
    marker = tmp_path / "shadow-ran"
    (project / "tensorboard.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    result = run_subprocess("fmaps", f"{project / 'nets.py'}:TinyNet", CHELSEA, "--size", "32",
                            "--logdir", str(tmp_path / "tb"))  # fmt: skip
    assert result.code == 0, result.stderr
    assert not marker.exists()


def test_stdout_holds_only_the_result(tmp_path):
    result = run_subprocess("summary", f"{TINY}:printing", "--device", "cpu", "--weights", "auto",
                            "-f", "json")  # fmt: skip
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["model"]["name"] == "printing"
    assert "building the model..." in result.stderr
    with open("/dev/full", "w") as dev_full:
        full = subprocess.run([sys.executable, "-m", "vizcli", "summary", MODEL, "-f", "json"],
                              cwd=ROOT, stdout=dev_full, stderr=subprocess.PIPE, text=True,
                              timeout=120)  # fmt: skip
    assert full.returncode == 1 and "error: cannot write to standard output" in full.stderr
    closed = subprocess.run(
        f"{sys.executable} -m vizcli summary {MODEL} -f json >&-", shell=True, cwd=ROOT,
        stderr=subprocess.PIPE, text=True, timeout=120,
    )  # fmt: skip
    assert closed.returncode == 1 and "standard output is closed" in closed.stderr
