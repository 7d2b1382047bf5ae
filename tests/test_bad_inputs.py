"""Every bad input a user can type, through the real CLI in a subprocess: one clear error line,
the right exit code (2 usage, 1 runtime), no traceback, nothing half-written, nothing changed.
Inputs that must work (palette, RGBA, 16-bit, CMYK, animated GIF, 1x1) are here too."""

from __future__ import annotations

import pickle
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT, SAMPLES, TINY, run_subprocess
from tests.tiny_models import OtherNet

CHELSEA = str(SAMPLES / "chelsea.png")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_bomb(path: Path) -> Path:
    """A valid PNG header claiming 100000 x 100000 pixels (10 G) with almost no data."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return path


def make_file(kind: str, folder: Path) -> str:
    """Create the input file for one case; return its path (or a path that must not exist)."""
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    path = folder / kind
    if kind == "missing.png":
        return str(path)
    if kind == "folder.png":
        path.mkdir()
    elif kind == "empty.png":
        path.write_bytes(b"")
    elif kind in ("truncated.png", "truncated.jpg"):
        full = folder / ("full" + path.suffix)
        noise.save(full)
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    elif kind == "text.png":
        path.write_text("this is not an image")
    elif kind == "bomb.png":
        make_bomb(path)
    elif kind == "deep16.png":
        Image.fromarray((rng.integers(0, 65535, (40, 40))).astype(np.uint16)).save(path)
    elif kind == "cmyk.jpg":
        noise.convert("CMYK").save(path)
    elif kind == "palette.png":
        noise.convert("P").save(path)
    elif kind == "rgba.png":
        noise.convert("RGBA").save(path)
    elif kind == "anim.gif":
        noise.save(path, save_all=True, append_images=[noise.rotate(90)])
    elif kind == "tiny.png":
        Image.new("RGB", (1, 1), (200, 10, 10)).save(path)
    elif kind == "other_arch.pt":
        torch.save(OtherNet().state_dict(), path)
    elif kind == "notes.pt":
        path.write_text("not a checkpoint")
    elif kind == "evil.pt":
        path.write_bytes(pickle.dumps({"weight": _Exploit(str(folder / "pwned"))}))
    elif kind == "file_out":
        path.write_text("I am a file")
    return str(path)


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


F = "{file}"  # replaced by the case's file
MODEL = f"{TINY}:TinyNet"
CASES = [
    # id, file kind, argv, exit code, text in the error line ("" for cases that must work)
    ("missing file", "missing.png", ["fmaps", MODEL, F], 2, "image not found"),
    ("folder as file", "folder.png", ["summary", MODEL, "--image", F], 2, "is a folder"),
    ("zero-byte file", "empty.png", ["fmaps", MODEL, F], 1, "empty file"),
    ("truncated png", "truncated.png", ["fmaps", MODEL, F], 1, "could not be decoded"),
    ("truncated jpeg", "truncated.jpg", ["fmaps", MODEL, F], 1, "could not be decoded"),
    ("text named .png", "text.png", ["fmaps", MODEL, F], 1, "not an image"),
    ("decompression bomb", "bomb.png", ["fmaps", MODEL, F], 1, "refused to decode"),
    ("16-bit png works", "deep16.png", ["fmaps", MODEL, F], 0, ""),
    ("cmyk jpeg works", "cmyk.jpg", ["fmaps", MODEL, F], 0, ""),
    ("palette png works", "palette.png", ["cam", MODEL, F], 0, ""),
    ("rgba png works", "rgba.png", ["cam", MODEL, F], 0, ""),
    ("animated gif works", "anim.gif", ["fmaps", MODEL, F], 0, ""),
    ("1x1 image works", "tiny.png", ["cam", MODEL, F], 0, ""),
    ("unknown model", None, ["summary", "resnet19"], 2, "unknown model 'resnet19'"),
    ("unknown factory", None, ["summary", f"{TINY}:Nope"], 2, "has no attribute"),
    ("unknown layer", None, ["fmaps", MODEL, CHELSEA, "--layer", "features.9"], 2, "unknown layer"),
    ("unknown method", None, ["cam", MODEL, CHELSEA, "--method", "gradcan"], 2, "unknown method"),
    (
        "unknown class",
        None,
        ["cam", "resnet18", CHELSEA, "--target", "unicorn"],
        2,
        "unknown class",
    ),
    ("class out of range", None, ["cam", MODEL, CHELSEA, "--target", "4"], 2, "out of range"),
    ("input with letters", None, ["summary", MODEL, "--input", "1,3,x"], 2, "not an integer"),
    ("input with zero", None, ["summary", MODEL, "--input", "0,3,8,8"], 2, "not positive"),
    ("negative input", None, ["summary", MODEL, "--input=1,3,-8,8"], 2, "not positive"),
    ("input wrong rank", None, ["summary", "resnet18", "--input", "1,3,224"], 2, "cannot run"),
    ("empty input", None, ["summary", MODEL, "--input", ""], 2, "empty --input"),
    ("other architecture", "other_arch.pt", ["summary", MODEL, "--weights", F], 1, "does not fit"),
    ("not a checkpoint", "notes.pt", ["summary", MODEL, "--weights", F], 1, "not a PyTorch"),
    ("pickle running code", "evil.pt", ["summary", MODEL, "--weights", F], 1, "refused"),
    ("missing checkpoint", "missing.pt", ["summary", MODEL, "--weights", F], 2, "not found"),
    (
        "unknown weights",
        None,
        ["summary", "resnet18", "--weights", "IMAGENET9"],
        2,
        "unknown weights",
    ),
    (
        "uncached weights offline",
        None,
        ["summary", "resnet18", "--weights", "DEFAULT"],
        1,
        "not in the torch hub cache",
    ),
    ("out is a file", "file_out", ["fmaps", MODEL, CHELSEA, "--out", F], 2, "is a file"),
    (
        "unwritable out",
        None,
        ["fmaps", MODEL, CHELSEA, "--out", "/proc/vizcli"],
        1,
        "cannot create",
    ),
    ("fmaps flat layer", None, ["fmaps", MODEL, CHELSEA, "--layer", "fc"], 2, "not an image-like"),
    ("cam flat layer", None, ["cam", MODEL, CHELSEA, "--layer", "fc"], 2, "not an image-like"),
    ("unknown colormap", None, ["fmaps", MODEL, CHELSEA, "--colormap", "rainbow"], 2, "colormap"),
    ("bad device", None, ["summary", MODEL, "--device", "tpu"], 2, "device"),
    ("bad format", None, ["summary", MODEL, "--format", "yaml"], 2, "yaml"),
    ("topk zero", None, ["cam", MODEL, CHELSEA, "--topk", "0"], 2, "topk"),
    (
        "summary output exists",
        "file_out",
        ["summary", MODEL, "-f", "json", "-o", F],
        2,
        "already exists",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "argv", "code", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(tmp_path, kind, argv, code, text):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    path = make_file(kind, inputs) if kind else ""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    before = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}
    args = [a.replace(F, path) for a in argv]
    if args[0] in ("fmaps", "cam") and "--out" not in args:
        args += ["--out", str(out), "--size", "32"]
    result = run_subprocess(*args)
    assert result.code == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if code:
        assert len(errors) == 1 and text in errors[0], result.stderr
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # nothing new, no temp
    else:
        assert not errors
        assert any(p.suffix == ".png" for p in out.rglob("*.png"))
    assert (out / "keep.txt").read_text() == "precious"
    assert {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()} == before
    assert not (inputs / "pwned").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [(signal.SIGINT, 130, "error: interrupted"), (signal.SIGTERM, 143, "error: terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_mid_run_leaves_no_partial_files(tmp_path, signum, code, line):
    """Ctrl-C, and SIGTERM as CI runners and `timeout` send it: one line, nothing left."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        Image.open(CHELSEA).save(folder / f"cat{i:02d}.png")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vizcli", "fmaps", "vgg11", str(folder), "--out", str(out),
         "--weights", "none"],
        cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob(".*.partial/*.png")):
        time.sleep(0.1)
    assert list(out.glob(".*.partial/*.png")), "the run never started writing"
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert stderr.strip().splitlines()[-1] == line
    assert not out.exists()  # the folder was created by the run, and removed with it


@pytest.mark.parametrize(
    ("factory", "command", "expected"),
    [("Raises", "fmaps", "ValueError: boom in the user's forward (in Raises.forward, "),
     ("Buggy", "cam", "RuntimeError: Given groups=1, weight of size [4, 3, 3, 3], expected "
      "input[1, 4, 224, 224] to have 3 channels"),
     ("Buggy", "actmax", "(in Buggy.forward, ")],
)  # fmt: skip
def test_a_bug_in_the_users_forward_is_theirs_not_an_internal_error(
    tmp_path, factory, command, expected
):
    """The one line names the exception, its message and the user's forward with its line."""
    inputs = ["--class", "1", "--steps", "1"] if command == "actmax" else [CHELSEA]
    result = run_subprocess(command, f"{TINY}:{factory}", *inputs, "--out", str(tmp_path))
    assert result.code == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: the model's forward failed: "), line
    assert expected in line and "internal error" not in line
    assert f"tiny_models.py:{_line_of(factory)}" in line
    assert line.endswith("(--debug shows the traceback)") and "Traceback" not in result.stderr


def _line_of(factory: str) -> int:
    """The line of ``factory``'s failing statement in tests/tiny_models.py."""
    import inspect

    from tests import tiny_models

    source, first = inspect.getsourcelines(getattr(tiny_models, factory).forward)
    return first + len(source) - 1


def test_a_bug_in_a_vizcli_hook_stays_an_internal_error():
    from torch import nn

    from vizcli.errors import failure_in_model
    from vizcli.hooks import capture

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())

    def broken(name, output):
        raise KeyError("vizcli's own bug")

    with pytest.raises(KeyError) as caught, capture(model, {"0": model[0]}, broken):
        model(torch.zeros(1, 3, 8, 8))
    assert failure_in_model(caught.value) is None
    with pytest.raises(ValueError) as raised:
        model[0].register_forward_hook(lambda *a: (_ for _ in ()).throw(ValueError("user hook")))
        model(torch.zeros(1, 3, 8, 8))
    assert failure_in_model(raised.value).startswith(
        "the model's forward failed: ValueError: user hook"
    )
