"""Output sinks: PNG files and TensorBoard event files behind one small interface.

A sink is one class: its ``kind`` (the manifest's name), the ``option`` that names its output
folder (``--out``, ``--logdir``), and ``write``. ``@register`` puts it in :data:`SINKS`, where
:class:`RunOutputs` finds it; a new format needs no other change here.

Each invocation writes into a fresh run folder (``<dir>/<command>-<model>``, numbered if taken)
that is built under a hidden temporary name and renamed into place only when the run succeeds:
an error or Ctrl-C leaves nothing behind, and nothing that existed is ever overwritten. Every
run folder gets a ``manifest.json`` listing what was written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from vizcli import artifacts, interrupts
from vizcli.errors import UsageError, VizError
from vizcli.output.files import write_bytes_atomic

MANIFEST = "manifest.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, limit: int = 120) -> str:
    """A file name from a tag: no separators, no leading dots, no '..', bounded length."""
    name = _UNSAFE.sub("_", text.replace("/", "__")).strip("._") or "unnamed"
    return name[:limit]


@dataclass
class RunInfo:
    """What every artifact records about the run (TensorBoard text and manifest)."""

    command: str
    model: dict[str, Any]
    weights: dict[str, Any]
    inputs: list[str] = field(default_factory=list)
    command_line: str = field(default_factory=lambda: " ".join(["vizcli", *sys.argv[1:]]))
    details: dict[str, Any] = field(default_factory=dict)  # command-specific manifest keys

    def markdown(self) -> str:
        weights = self.weights.get("description") or "none (random init)"
        lines = [
            f"**command**: `{self.command_line}`",
            f"**model**: {self.model.get('name')} ({self.model.get('class')})",
            f"**weights**: {weights}" + ("" if self.weights.get("pretrained") else " — RANDOM"),
        ]
        if self.inputs:
            lines.append("**inputs**: " + ", ".join(self.inputs))
        return "  \n".join(lines)


class Sink(ABC):
    """Receives artifacts; ``records`` lists what it wrote, for the manifest."""

    kind: ClassVar[str]  # "png", "tensorboard": the manifest's "sink"
    option: ClassVar[str]  # the RunOutputs keyword (and CLI option) naming its root folder
    takes_files: ClassVar[bool] = False  # finished files (DOT, SVG) go to the first that does

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.records: list[dict[str, Any]] = []

    @abstractmethod
    def write(self, item: artifacts.Artifact) -> None: ...

    def write_file(self, item: artifacts.File) -> None:
        write_bytes_atomic(self.folder / safe_name(item.name), item.data)
        self.records.append(
            {"kind": item.kind, "file": safe_name(item.name), "bytes": len(item.data)}
        )

    def close(self) -> None:  # noqa: B027 - optional for sinks with nothing to flush
        pass

    def how_to_view(self) -> str | None:
        """A hint for the terminal after the run, if looking needs more than opening files."""
        return None


SINKS: dict[str, type[Sink]] = {}  # option -> sink class, in the order runs fill them


def register(sink: type[Sink]) -> type[Sink]:
    SINKS[sink.option] = sink
    return sink


@register
class PngSink(Sink):
    """One PNG per image artifact, named from its tag (and step when there are several);
    the progress pictures of an optimisation are left to TensorBoard."""

    kind = "png"
    option = "out"
    takes_files = True

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self._used: set[str] = set()

    def write(self, item: artifacts.Artifact) -> None:
        if not isinstance(item, artifacts.Image) or item.role == "progress":
            return
        if item.label:
            base = safe_name(f"{item.label}/{item.tag}")
        else:
            numbered = item.step and item.role != "result"  # a result is the series' only PNG
            base = safe_name(item.tag) + (f"_{item.step}" if numbered else "")
        name, counter = f"{base}.png", 2
        while name in self._used:  # two tags that sanitise alike never collide
            name, counter = f"{base}-{counter}.png", counter + 1
        self._used.add(name)
        write_bytes_atomic(self.folder / name, item.png)
        height, width = item.pixels.shape[:2]
        self.records.append(
            {"kind": "image", "tag": item.tag, "step": item.step, "file": name,
             "width": width, "height": height}
        )  # fmt: skip


@register
class TensorBoardSink(Sink):
    """torch.utils.tensorboard's SummaryWriter, with a C CRC32C when one is installed."""

    kind = "tensorboard"
    option = "logdir"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        from vizcli.output import fastcrc

        fastcrc.install()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder), max_queue=1000, flush_secs=3600)

    def write(self, item: artifacts.Artifact) -> None:
        if isinstance(item, artifacts.Graph):
            self.writer._get_file_writer().add_graph(item.profile)
            self.records.append({"kind": "graph", "nodes": len(item.profile[0].node)})
            return
        record: dict[str, Any] = {"tag": item.tag, "step": item.step}
        if isinstance(item, artifacts.Image):
            height, width = item.pixels.shape[:2]
            self._add_png(item.tag, item.png, height, width, item.step)
            record.update(kind="image", width=width, height=height)
        elif isinstance(item, artifacts.Histogram):
            self.writer.add_histogram(item.tag, item.values, item.step)
            record.update(kind="histogram")
        elif isinstance(item, artifacts.Scalar):
            self.writer.add_scalar(item.tag, item.value, item.step)
            record.update(kind="scalar")
        else:
            self.writer.add_text(item.tag, item.text, item.step)
            record.update(kind="text")
        self.records.append(record)

    def _add_png(self, tag: str, png: bytes, height: int, width: int, step: int) -> None:
        """What ``add_image`` writes, reusing the PNG bytes the PNG sink also wrote."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png)
        summary = Summary(value=[Summary.Value(tag=tag, image=image)])
        self.writer._get_file_writer().add_summary(summary, step)

    def close(self) -> None:
        self.writer.close()

    def how_to_view(self) -> str:
        return f"TensorBoard: tensorboard --logdir {self.folder.parent}"


class RunOutputs:
    """Fan artifacts out to the sinks of one run; commit or discard the run folders.

    Run names are reserved atomically: ``os.mkdir`` of the hidden staging folder succeeds for
    exactly one process, so concurrent runs into the same folder get distinct names. Only what
    this process created is ever deleted: its staging folders, and output roots it created
    that are still empty.
    """

    def __init__(self, info: RunInfo, run: str | None = None, **folders: Path | None) -> None:
        """``folders``: each sink's root by its option (``out=``, ``logdir=``); none given:
        TensorBoard under ``runs/``, SummaryWriter's convention."""
        unknown = set(folders) - set(SINKS)
        if unknown:
            raise TypeError(f"no sink takes {sorted(unknown)}; known: {sorted(SINKS)}")
        chosen = {option: Path(folders[option]) for option in SINKS if folders.get(option)}
        self.roots = chosen or {"logdir": Path("runs")}
        _check_distinct(self.roots)
        self.info = info
        for root in self.roots.values():
            _check_output_root(root)
        self.base = safe_name(run or f"{info.command}-{info.model.get('name', 'model')}", 80)
        self.name = self.base
        self.sinks: list[Sink] = []
        self.finals: dict[str, Path] = {}
        self.staging: dict[str, Path] = {}
        self.created_roots: list[Path] = []
        self.started = time.time()

    def __enter__(self) -> RunOutputs:
        _quiet_writer_threads(True)
        try:
            for root in self.roots.values():
                self.created_roots += _make_folders(root)
            self._reserve()
            for option, staging in self.staging.items():
                self.sinks.append(SINKS[option](staging))
        except BaseException:
            self._discard()
            raise
        self.write(artifacts.Text("vizcli/run", self.info.markdown()))
        return self

    def _reserve(self) -> None:
        """Claim the first free ``NAME``, ``NAME-2``... in every root at once."""
        for counter in range(1, 10_000):
            name = self.base if counter == 1 else f"{self.base}-{counter}"
            claimed: dict[str, Path] = {}
            for option, root in self.roots.items():
                staging = root / f".{name}.partial"
                try:
                    staging.mkdir()
                except FileExistsError:
                    break
                except OSError as exc:
                    _remove_all(claimed.values())
                    raise VizError(f"cannot create {root}/: {exc.strerror or exc}") from exc
                claimed[option] = staging
                if (root / name).exists():  # a finished run holds the name
                    break
            else:
                self.name, self.staging = name, claimed
                self.finals = {option: root / name for option, root in self.roots.items()}
                return
            _remove_all(claimed.values())
        roots = ", ".join(map(str, self.roots.values()))
        raise VizError(f"no free run name for {self.base} in {roots}")

    def write(self, item: artifacts.Artifact) -> None:
        interrupts.check()  # stop at the next artifact if a signal's exception was lost
        if isinstance(item, artifacts.File):  # files go once: the PNG folder if there is one
            target = next((s for s in self.sinks if s.takes_files), self.sinks[0])
            target.write_file(item)
            return
        for sink in self.sinks:
            sink.write(item)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            interrupts.check()  # never commit a run that was asked to stop
            for sink in self.sinks:
                sink.close()
                _write_manifest(sink, self.info, time.time() - self.started)
            for sink in self.sinks:
                final = self.finals[sink.option]
                if final.exists():
                    raise UsageError(f"{final} appeared while this run was writing; kept it")
                sink.folder.rename(final)
                sink.folder = final
        except OSError as exc:
            self._discard()
            raise VizError(f"could not finish the run: {exc.strerror or exc}") from exc
        except BaseException:
            self._discard()
            raise
        finally:
            _quiet_writer_threads(False)

    def _discard(self) -> None:
        """Remove what this run created, whatever fails on the way (a full disk included)."""
        for sink in self.sinks:
            with contextlib.suppress(BaseException):
                sink.close()
        _remove_all(self.staging.values())
        for root in reversed(self.created_roots):
            with contextlib.suppress(OSError):
                root.rmdir()  # only when still empty
        _quiet_writer_threads(False)

    def summary_lines(self) -> list[str]:
        """Where results went, and how to look at them, for the terminal."""
        lines = []
        for sink in self.sinks:
            counts: dict[str, int] = {}
            for record in sink.records:
                counts[record["kind"]] = counts.get(record["kind"], 0) + 1
            files = [r["file"] for r in sink.records if r["kind"] == "file"]
            parts = [f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.items()
                     if kind not in ("file", "text")] + files  # fmt: skip
            where = f"wrote {', '.join(parts) or 'nothing'} to {sink.folder}/"
            hint = sink.how_to_view()
            lines.append(f"{where} ({hint})" if hint else where)
        return lines


def unfinished_runs(root: Path) -> list[Path]:
    """Staging folders left in ``root`` by runs that were killed (SIGKILL, power loss)."""
    return sorted(p for p in root.glob(".*.partial") if p.is_dir())


def _check_distinct(roots: dict[str, Path]) -> None:
    """Two sinks never share a root: their run folders would collide."""
    seen: dict[str, str] = {}
    for option, root in roots.items():
        key = os.path.abspath(root.expanduser())
        if key in seen:
            first = seen[key]
            raise UsageError(
                f"--{first} and --{option} are the same folder ({root}): "
                f"{SINKS[first].kind} and {SINKS[option].kind} runs need folders of their own",
                hint=f"for example --{first} {root}/{SINKS[first].kind} "
                f"--{option} {root}/{SINKS[option].kind}",
            )
        seen[key] = option


def _make_folders(root: Path) -> list[Path]:
    """Create ``root`` and missing parents; return those created (outermost first)."""
    missing = []
    probe = root
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            for made in reversed(created):  # leave nothing half-made behind
                with contextlib.suppress(OSError):
                    made.rmdir()
            raise VizError(f"cannot create {folder}/: {exc.strerror or exc}") from exc
        created.append(folder)
    return created


def _remove_all(folders: Any) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


_default_excepthook = threading.excepthook


def _quiet_writer_threads(quiet: bool) -> None:
    """TensorBoard's writer thread re-raises I/O errors (a full disk) after storing them for the
    next write, which then fails with a clear error: don't print its traceback as well."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if type(args.thread).__name__ != "_AsyncWriterThread":
            _default_excepthook(args)

    threading.excepthook = hook if quiet else _default_excepthook


def _check_output_root(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UsageError(f"output path {root} is a file, not a folder")
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise UsageError(f"output folder {probe} is not writable")


def _write_manifest(sink: Sink, info: RunInfo, seconds: float) -> None:
    manifest = {
        "schema": "vizcli.manifest/1",
        "command": info.command,
        "command_line": info.command_line,
        "model": info.model,
        "weights": info.weights,
        "inputs": info.inputs,
        "sink": sink.kind,
        "seconds": round(seconds, 3),
        **info.details,
        "artifacts": sink.records,
    }
    try:
        write_bytes_atomic(sink.folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    except OSError as exc:
        raise VizError(f"could not write the manifest in {sink.folder}: {exc}") from exc
