"""The run folders and manifests, read back independently: every manifest record matches the
file on disk (PIL's size, the byte count) or the event file (TensorBoard's reader); PNG names,
run names, the terminal summary, and what a failed run leaves (nothing)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.tb import read_events
from vizcli import artifacts
from vizcli.errors import UsageError, VizError
from vizcli.output.sinks import RunInfo, RunOutputs, safe_name, unfinished_runs

INFO = dict(
    command="fmaps",
    model={"name": "net", "class": "Net"},
    weights={"description": "random", "pretrained": False},
    inputs=["a.png"],
    command_line="vizcli fmaps net a.png",
)


def _pixels(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _run(tmp_path, items, **kwargs):
    info = RunInfo(**INFO, details=kwargs.pop("details", {}))
    with RunOutputs(info, out=tmp_path / "png", logdir=tmp_path / "tb", **kwargs) as outputs:
        for item in items:
            outputs.write(item)
    return outputs


def test_every_manifest_record_matches_what_is_on_disk(tmp_path):
    items = [
        artifacts.Image("fmaps/conv", _pixels(6, 10, 0), step=0),
        artifacts.Image("fmaps/conv", _pixels(6, 10, 1), step=3),
        artifacts.Image("fmaps/conv", _pixels(4, 4, 2), step=0, label="b/cat"),
        artifacts.Image("fmaps/conv", _pixels(4, 4, 3), step=0, label="b/cat"),  # same name
        artifacts.Histogram("weights/fc", torch.arange(10.0), step=2),
        artifacts.Scalar("stats/fc/mean", 0.25, step=5),
        artifacts.Text("notes", "hello", step=1),
        artifacts.File("graph.dot", b"digraph {}\n"),
    ]
    outputs = _run(tmp_path, items, details={"layers": ["conv"]})
    png_folder, tb_folder = tmp_path / "png" / "fmaps-net", tmp_path / "tb" / "fmaps-net"
    assert [s.folder for s in outputs.sinks] == [png_folder, tb_folder]

    png = json.loads((png_folder / "manifest.json").read_text())
    assert {k: png[k] for k in ("schema", "command", "command_line", "sink", "layers")} == {
        "schema": "vizcli.manifest/1",
        "command": "fmaps",
        "command_line": "vizcli fmaps net a.png",
        "sink": "png",
        "layers": ["conv"],
    }
    assert png["model"] == INFO["model"] and png["inputs"] == ["a.png"]
    assert png["weights"] == INFO["weights"] and 0 <= png["seconds"] < 60
    files = [r["file"] for r in png["artifacts"]]
    assert files == [
        "fmaps__conv.png",  # step 0: no suffix
        "fmaps__conv_3.png",
        "b__cat__fmaps__conv.png",  # a label names the file
        "b__cat__fmaps__conv-2.png",  # the same name again: numbered, nothing overwritten
        "graph.dot",
    ]
    for record, item in zip(png["artifacts"][:4], items[:4], strict=True):
        with Image.open(png_folder / record["file"]) as image:
            assert np.array_equal(np.asarray(image), item.pixels)
            assert (record["width"], record["height"]) == image.size
        assert (record["kind"], record["tag"], record["step"]) == ("image", item.tag, item.step)
    assert png["artifacts"][4] == {"kind": "file", "file": "graph.dot", "bytes": 11}
    assert (png_folder / "graph.dot").read_bytes() == b"digraph {}\n"
    assert sorted(p.name for p in png_folder.iterdir()) == sorted([*files, "manifest.json"])

    board = json.loads((tb_folder / "manifest.json").read_text())
    assert board["sink"] == "tensorboard"
    kinds = [(r["kind"], r["tag"], r["step"]) for r in board["artifacts"]]
    assert kinds == [
        ("text", "vizcli/run", 0),
        ("image", "fmaps/conv", 0),
        ("image", "fmaps/conv", 3),
        ("image", "fmaps/conv", 0),
        ("image", "fmaps/conv", 0),
        ("histogram", "weights/fc", 2),
        ("scalar", "stats/fc/mean", 5),
        ("text", "notes", 1),
    ]
    events = read_events(tb_folder)
    logged = events.Images("fmaps/conv")
    assert [(e.step, e.width, e.height) for e in logged] == [
        (r["step"], r["width"], r["height"]) for r in board["artifacts"] if r["kind"] == "image"
    ]
    (scalar,) = events.Scalars("stats/fc/mean")
    assert (scalar.step, scalar.value) == (5, 0.25)
    (histogram,) = events.Histograms("weights/fc")
    assert (histogram.step, histogram.histogram_value.num) == (2, 10)
    assert histogram.histogram_value.sum == 45.0
    run_text = events.Tensors("vizcli/run/text_summary")[0].tensor_proto.string_val[0]
    assert b"vizcli fmaps net a.png" in run_text and b"RANDOM" in run_text
    assert not (tb_folder / "graph.dot").exists()  # files go once, to the PNG folder
    assert outputs.summary_lines() == [
        f"wrote 4 images, graph.dot to {png_folder}/",
        f"wrote 4 images, 1 histogram, 1 scalar to {tb_folder}/ "
        f"(TensorBoard: tensorboard --logdir {tmp_path / 'tb'})",
    ]


def test_run_names_are_numbered_and_never_reused(tmp_path):
    first = _run(tmp_path, [])
    second = _run(tmp_path, [])
    named = _run(tmp_path, [], run="my run/1")
    assert [o.name for o in (first, second, named)] == ["fmaps-net", "fmaps-net-2", "my_run__1"]
    (tmp_path / "png" / "fmaps-net-3").mkdir()  # taken in one root: skipped in both
    third = _run(tmp_path, [])
    assert third.name == "fmaps-net-4" and (tmp_path / "tb" / "fmaps-net-4").is_dir()
    assert unfinished_runs(tmp_path / "png") == [] and unfinished_runs(tmp_path / "tb") == []


def test_a_failed_run_leaves_nothing_and_keeps_what_was_there(tmp_path):
    (tmp_path / "png").mkdir()
    (tmp_path / "png" / "keep.txt").write_text("mine")
    info = RunInfo(**INFO)
    with (
        pytest.raises(RuntimeError, match="boom"),
        RunOutputs(info, out=tmp_path / "png", logdir=tmp_path / "tb") as outputs,
    ):
        outputs.write(artifacts.Image("x", _pixels(2, 2, 0)))
        raise RuntimeError("boom")
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["keep.txt"]
    assert not (tmp_path / "tb").exists()  # created by the run, removed with it


def test_text_and_single_sink_summaries(tmp_path):
    info = RunInfo(**INFO)
    with RunOutputs(info, out=tmp_path / "o") as outputs:
        outputs.write(artifacts.Text("t", "only text"))
    assert outputs.summary_lines() == [f"wrote nothing to {tmp_path / 'o' / 'fmaps-net'}/"]
    manifest = json.loads((tmp_path / "o" / "fmaps-net" / "manifest.json").read_text())
    assert manifest["artifacts"] == []  # text goes to TensorBoard only
    info = RunInfo(**{**INFO, "weights": {"description": "trained", "pretrained": True}})
    assert "RANDOM" not in info.markdown() and "**weights**: trained" in info.markdown()
    bare = RunInfo("kernels", {"name": "n", "class": "C"}, {}, command_line="vizcli kernels n")
    assert bare.markdown() == (
        "**command**: `vizcli kernels n`  \n**model**: n (C)  \n"
        "**weights**: none (random init) — RANDOM"
    )


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("fmaps/layer4.1", "fmaps__layer4.1"),
        ("../../etc/passwd", "etc__passwd"),
        ("..", "unnamed"),
        ("a b\\c:d", "a_b_c_d"),
        ("x" * 300, "x" * 120),
        ("Xception_X", "Xception_X"),  # only dots and underscores are stripped at the ends
        ("_.XX._", "XX"),
    ],
)
def test_safe_names(text, name):
    assert safe_name(text) == name


def test_bad_output_roots(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="output path .*file is a file, not a folder"):
        RunOutputs(RunInfo(**INFO), out=tmp_path / "file")
    with pytest.raises(UsageError, match="--out and --logdir are the same folder"):
        RunOutputs(RunInfo(**INFO), out=tmp_path / "d", logdir=tmp_path / "d" / ".." / "d")
    default = RunOutputs(RunInfo(**INFO))
    assert list(default.roots) == ["logdir"] and str(default.roots["logdir"]) == "runs"


def test_unfinished_runs_are_the_hidden_staging_folders(tmp_path):
    (tmp_path / ".fmaps-net.partial").mkdir()
    (tmp_path / ".cam-x.partial").mkdir()
    (tmp_path / ".file.partial").write_text("not a folder")
    (tmp_path / "fmaps-net").mkdir()
    assert unfinished_runs(tmp_path) == [
        tmp_path / ".cam-x.partial",
        tmp_path / ".fmaps-net.partial",
    ]
    with RunOutputs(RunInfo(**INFO), out=tmp_path) as run:  # a staging name in use is skipped
        pass
    assert run.name == "fmaps-net-2" and (tmp_path / ".fmaps-net.partial").is_dir()


def test_missing_parents_are_created_and_removed_again_on_failure(tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    info = RunInfo(**INFO)
    with pytest.raises(KeyboardInterrupt), RunOutputs(info, out=deep) as outputs:
        assert outputs.created_roots == [tmp_path / "a", tmp_path / "a" / "b", deep]
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with RunOutputs(info, out=deep):
        pass
    assert (deep / "fmaps-net" / "manifest.json").is_file()


def test_a_run_folder_that_appears_meanwhile_is_kept(tmp_path):
    info = RunInfo(**INFO)
    with pytest.raises(UsageError, match="appeared while this run was writing; kept it"):  # noqa: SIM117
        with RunOutputs(info, out=tmp_path / "o") as outputs:
            outputs.write(artifacts.Image("x", _pixels(2, 2, 0)))
            (tmp_path / "o" / "fmaps-net").mkdir()
            (tmp_path / "o" / "fmaps-net" / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["fmaps-net"]
    assert [p.name for p in (tmp_path / "o" / "fmaps-net").iterdir()] == ["theirs.txt"]


def test_writer_thread_errors_are_quiet_only_while_a_run_is_open(tmp_path):
    import threading

    from vizcli.output import sinks

    default = threading.excepthook
    seen = []
    with RunOutputs(RunInfo(**INFO), logdir=tmp_path / "tb"):
        hook = threading.excepthook
        assert hook is not default
        monkey = sinks._default_excepthook
        sinks._default_excepthook = seen.append
        try:

            class _AsyncWriterThread(threading.Thread):
                pass

            hook(threading.ExceptHookArgs((OSError, OSError(), None, _AsyncWriterThread())))
            other = threading.Thread()
            hook(threading.ExceptHookArgs((OSError, OSError(), None, other)))
        finally:
            sinks._default_excepthook = monkey
    assert threading.excepthook is default
    assert len(seen) == 1 and seen[0].thread is other  # only the writer thread is silenced


def test_an_unwritable_root_is_one_clear_error(tmp_path, monkeypatch):
    from pathlib import Path

    from vizcli.errors import VizError

    real_mkdir = Path.mkdir

    def refuse(self, *args, **kwargs):
        if self.name.endswith(".partial"):
            raise PermissionError(13, "Permission denied")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(VizError, match=r"cannot create .*png/: Permission denied"):  # noqa: SIM117
        with RunOutputs(RunInfo(**INFO), out=tmp_path / "png", logdir=tmp_path / "tb"):
            pass
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_graph_is_recorded_with_its_node_count(tmp_path):
    from torch import nn

    from vizcli.graph import tensorboard_graph

    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
    profile = tensorboard_graph(model, [torch.zeros(1, 3, 8, 8)])
    info = RunInfo(**INFO)
    with RunOutputs(info, logdir=tmp_path) as outputs:
        outputs.write(artifacts.Graph(profile))
    manifest = json.loads((tmp_path / "fmaps-net" / "manifest.json").read_text())
    (record,) = [r for r in manifest["artifacts"] if r["kind"] == "graph"]
    assert record == {"kind": "graph", "nodes": len(profile[0].node)} and record["nodes"] > 3
    events = read_events(tmp_path / "fmaps-net")
    assert len(events.Graph().node) == record["nodes"]


def test_a_signal_whose_exception_was_lost_still_stops_the_run(tmp_path):
    """Python drops a KeyboardInterrupt raised inside a finalizer; the request it recorded
    still keeps the run folder from being committed."""
    from vizcli import interrupts

    interrupts.clear()
    try:
        with pytest.raises(KeyboardInterrupt), RunOutputs(RunInfo(**INFO), out=tmp_path / "o") as o:
            o.write(artifacts.Image("x", _pixels(2, 2, 0)))
            interrupts.request("interrupted")  # as the handler does, its exception lost
        assert not (tmp_path / "o").exists()
    finally:
        interrupts.clear()


def test_tags_that_sanitise_alike_are_numbered_in_order(tmp_path):
    tags = ["x y", "x:y", "x?y", "x y"]
    outputs = _run(tmp_path, [artifacts.Image(t, _pixels(2, 3, i)) for i, t in enumerate(tags)])
    names = [r["file"] for r in outputs.sinks[0].records]
    assert names == ["x_y.png", "x_y-2.png", "x_y-3.png", "x_y-4.png"]
    assert outputs.summary_lines()[0] == f"wrote 4 images to {tmp_path / 'png' / 'fmaps-net'}/"


def test_two_of_a_kind_are_plural_and_one_is_not(tmp_path):
    items = [artifacts.Scalar("s", 1.0), artifacts.Scalar("s", 2.0, step=1),
             artifacts.Histogram("h", torch.ones(3))]  # fmt: skip
    outputs = _run(tmp_path, items)
    assert outputs.summary_lines()[1].startswith("wrote 2 scalars, 1 histogram to ")


def test_tensorboard_images_are_what_add_image_writes(tmp_path):
    """The PNG bytes are reused rather than re-encoded: every other field of the image summary
    must equal what SummaryWriter.add_image writes for the same pixels."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    from torch.utils.tensorboard import SummaryWriter

    pixels = _pixels(5, 7, 0)
    _run(tmp_path, [artifacts.Image("img", pixels, step=4), artifacts.Text("t", "x", step=6)])
    with SummaryWriter(tmp_path / "oracle") as writer:
        writer.add_image("img", pixels, 4, dataformats="HWC")

    def summaries(folder):
        found = {}
        for path in folder.glob("events.out.tfevents.*"):
            for record in RawEventFileLoader(str(path)).Load():
                event = Event.FromString(record)
                for value in event.summary.value:
                    found[value.tag] = (event.step, value)
        return found

    ours = summaries(tmp_path / "tb" / "fmaps-net")
    step, mine = ours["img"]
    oracle_step, oracle = summaries(tmp_path / "oracle")["img"]
    assert step == oracle_step == 4
    for name in ("height", "width", "colorspace"):
        assert getattr(mine.image, name) == getattr(oracle.image, name), name
    assert mine.image.colorspace == 3
    decode = [
        np.asarray(Image.open(io.BytesIO(v.image.encoded_image_string))) for v in (mine, oracle)
    ]
    assert np.array_equal(decode[0], decode[1]) and np.array_equal(decode[0], pixels)
    assert ours["t/text_summary"][0] == 6  # text keeps its step too


def test_a_failing_close_still_discards_the_run_and_restores_the_thread_hook(tmp_path, monkeypatch):
    import threading

    from vizcli.output.sinks import TensorBoardSink

    default = threading.excepthook

    def full_disk(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TensorBoardSink, "close", full_disk)
    with (
        pytest.raises(RuntimeError, match="boom"),
        RunOutputs(RunInfo(**INFO), out=tmp_path / "png", logdir=tmp_path / "tb") as outputs,
    ):
        outputs.write(artifacts.Image("x", _pixels(2, 2, 0)))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    assert threading.excepthook is default


def test_a_staging_folder_removed_by_someone_else_is_not_an_error(tmp_path):
    import shutil

    with (
        pytest.raises(RuntimeError, match="boom"),
        RunOutputs(RunInfo(**INFO), out=tmp_path / "png") as outputs,
    ):
        shutil.rmtree(outputs.staging["out"])
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_a_new_output_format_is_one_registered_class(tmp_path, monkeypatch):
    """The registry is the only place RunOutputs learns about sinks: a class with a kind, an
    option and ``write`` gets its own run folder, manifest, files and terminal line."""
    from vizcli.output import sinks

    class TagList(sinks.Sink):
        kind, option = "taglist", "tags"

        def write(self, item):
            self.records.append({"kind": "tag", "tag": item.tag})

        def how_to_view(self):
            return "cat it"

    monkeypatch.setattr(sinks, "SINKS", dict(sinks.SINKS))
    sinks.register(TagList)
    with RunOutputs(RunInfo(**INFO), tags=tmp_path / "t") as outputs:
        outputs.write(artifacts.Scalar("s", 1.0))
        outputs.write(artifacts.File("a.dot", b"x"))  # no sink takes files: the first one
    folder = tmp_path / "t" / "fmaps-net"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sink"] == "taglist" and (folder / "a.dot").read_bytes() == b"x"
    assert [r["tag"] for r in manifest["artifacts"][:2]] == ["vizcli/run", "s"]
    assert outputs.summary_lines() == [f"wrote 2 tags, a.dot to {folder}/ (cat it)"]
    with pytest.raises(UsageError, match="--logdir and --tags are the same folder"):
        RunOutputs(RunInfo(**INFO), tags=tmp_path / "x", logdir=tmp_path / "x")
    with pytest.raises(TypeError, match="no sink takes \\['html'\\]"):
        RunOutputs(RunInfo(**INFO), html=tmp_path)


def test_the_run_text_in_full():
    info = RunInfo(**{**INFO, "inputs": ["a.png", "b.png"],
                      "weights": {"description": "ImageNet", "pretrained": True}})  # fmt: skip
    assert info.markdown() == (
        "**command**: `vizcli fmaps net a.png`  \n**model**: net (Net)  \n"
        "**weights**: ImageNet  \n**inputs**: a.png, b.png"
    )


def test_one_folder_for_two_sinks_says_how_to_split_it(tmp_path):
    with pytest.raises(UsageError) as error:
        RunOutputs(RunInfo(**INFO), out=tmp_path / "d", logdir=tmp_path / "d")
    assert str(error.value) == (
        f"--out and --logdir are the same folder ({tmp_path / 'd'}): png and tensorboard runs "
        f"need folders of their own (for example --out {tmp_path / 'd'}/png "
        f"--logdir {tmp_path / 'd'}/tensorboard)"
    )


@pytest.mark.parametrize(
    ("run", "model", "base"),
    [
        (None, {}, "fmaps-model"),  # a model without a name
        ("r" * 81, INFO["model"], "r" * 80),  # run names are cut at 80 characters
        (None, {"name": "m" * 100}, "fmaps-" + "m" * 74),
    ],
)
def test_run_names_by_default_and_cut_short(tmp_path, run, model, base):
    outputs = RunOutputs(RunInfo(**{**INFO, "model": model}), run=run, out=tmp_path)
    assert outputs.base == outputs.name == base
    with outputs:
        pass
    assert [p.name for p in tmp_path.iterdir()] == [base]


def test_when_every_run_name_is_taken_in_one_root_the_error_names_both(tmp_path):
    taken, free = tmp_path / "a", tmp_path / "b"
    for counter in range(1, 10_000):
        (taken / ("fmaps-net" if counter == 1 else f"fmaps-net-{counter}")).mkdir(parents=True)
    with pytest.raises(VizError) as error, RunOutputs(RunInfo(**INFO), out=taken, logdir=free):
        pass
    assert str(error.value) == f"no free run name for fmaps-net in {taken}, {free}"
    assert not free.exists()  # made for this run, removed with it


def test_when_every_run_name_is_taken_the_error_says_where(tmp_path):
    for counter in range(1, 10_000):
        (tmp_path / ("fmaps-net" if counter == 1 else f"fmaps-net-{counter}")).mkdir()
    with pytest.raises(VizError) as error, RunOutputs(RunInfo(**INFO), out=tmp_path):
        pass
    assert str(error.value) == f"no free run name for fmaps-net in {tmp_path}"
    assert unfinished_runs(tmp_path) == []


def test_a_failing_rename_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    def full(self, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "rename", full)
    with pytest.raises(VizError) as error, RunOutputs(RunInfo(**INFO), out=tmp_path / "o") as o:
        o.write(artifacts.Image("x", _pixels(2, 2, 0)))
    assert str(error.value) == "could not finish the run: No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_a_failing_manifest_is_one_clear_error(tmp_path, monkeypatch):
    from vizcli.output import sinks

    real = sinks.write_bytes_atomic

    def refuse_manifest(path, data, force=False):
        if path.name == "manifest.json":
            raise OSError(28, "No space left on device")
        return real(path, data, force)

    monkeypatch.setattr(sinks, "write_bytes_atomic", refuse_manifest)
    manifest_error = r"^could not write the manifest in .*: \[Errno 28\] No space"
    with pytest.raises(VizError, match=manifest_error), RunOutputs(RunInfo(**INFO), out=tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


def test_the_manifest_is_indented_and_times_to_the_millisecond(tmp_path, monkeypatch):
    from vizcli.output import sinks

    clock = iter([100.0, 101.23456, 101.23456])
    monkeypatch.setattr(sinks.time, "time", lambda: next(clock))
    with RunOutputs(RunInfo(**INFO), out=tmp_path):
        pass
    text = (tmp_path / "fmaps-net" / "manifest.json").read_text()
    assert text.startswith('{\n  "schema": "vizcli.manifest/1",\n  "command": "fmaps",')
    assert json.loads(text)["seconds"] == 1.235


def test_a_parent_folder_made_meanwhile_by_another_run_is_fine(tmp_path, monkeypatch):
    """Two runs creating a/b/c at once: the one that loses the race on 'a' goes on to b and c."""
    from pathlib import Path

    real_mkdir = Path.mkdir

    def race(self, *args, **kwargs):
        if self == tmp_path / "a" and not self.exists():
            real_mkdir(self)  # the other run was first
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", race)
    with RunOutputs(RunInfo(**INFO), out=tmp_path / "a" / "b" / "c") as outputs:
        pass
    assert outputs.created_roots == [tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"]
    assert (tmp_path / "a" / "b" / "c" / "fmaps-net" / "manifest.json").is_file()


def test_a_parent_folder_that_cannot_be_made_is_one_clear_error(tmp_path, monkeypatch):
    from pathlib import Path

    real_mkdir = Path.mkdir

    def refuse(self, *args, **kwargs):
        if self.name == "b":
            raise PermissionError(13, "Permission denied")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(VizError) as error, RunOutputs(RunInfo(**INFO), out=tmp_path / "a" / "b"):
        pass
    assert str(error.value) == f"cannot create {tmp_path / 'a' / 'b'}/: Permission denied"
    assert list(tmp_path.iterdir()) == []


def test_a_made_folder_that_cannot_be_removed_again_keeps_the_clear_error(tmp_path, monkeypatch):
    """Clean-up after a failed mkdir goes on past a folder it cannot remove (another run put a
    file there meanwhile): the error stays the one about the folder that could not be made."""
    from pathlib import Path

    real_mkdir = Path.mkdir

    def refuse(self, *args, **kwargs):
        if self.name == "c":
            (self.parent / "theirs.txt").write_text("another run's file")
            raise PermissionError(13, "Permission denied")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    with (
        pytest.raises(VizError) as error,
        RunOutputs(RunInfo(**INFO), out=tmp_path / "a" / "b" / "c"),
    ):
        pass
    assert str(error.value) == f"cannot create {tmp_path / 'a' / 'b' / 'c'}/: Permission denied"
    assert (tmp_path / "a" / "b" / "theirs.txt").is_file()  # not ours: kept, with its folders


def test_an_output_folder_without_write_permission_is_refused_up_front(tmp_path, monkeypatch):
    """The first folder that exists on the way to the root is the one checked."""
    from vizcli.output import sinks

    monkeypatch.setattr(sinks.os, "access", lambda path, mode: False)  # root may write anywhere
    with pytest.raises(UsageError) as error, RunOutputs(RunInfo(**INFO), out=tmp_path / "a" / "b"):
        pass
    assert str(error.value) == f"output folder {tmp_path} is not writable"
    assert list(tmp_path.iterdir()) == []
