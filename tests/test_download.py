"""Weight downloads against a real HTTP server on loopback: the bytes arrive whole and checked,
or one error line and nothing left behind, within the bounds the environment sets."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import random
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from vizcli.errors import UsageError, WeightsError
from vizcli.models import download as dl

PAYLOAD = random.Random(0).randbytes(3 * 2**20 + 12345)  # three 1 MiB chunks, a ragged end
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
NEAR_MISS = DIGEST[:4] + ("0000" if DIGEST[4:8] != "0000" else "1111")  # right start, wrong end


class Handler(http.server.BaseHTTPRequestHandler):
    """``/whole``: the payload; ``/unsized``: the payload with no Content-Length; ``/short``: a
    Content-Length 100 bytes too long; ``/stall``: headers and 10 bytes, then silence;
    ``/trickle``: 64 KiB every 50 ms; anything else: 404."""

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if path not in ("/whole", "/unsized", "/short", "/stall", "/trickle"):
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        if path != "/unsized":
            extra = 100 if path == "/short" else 0
            self.send_header("Content-Length", str(len(PAYLOAD) + extra))
        else:
            self.close_connection = True  # the end of the stream ends the body
        self.end_headers()
        with contextlib.suppress(OSError):
            if path == "/stall":
                self.wfile.write(PAYLOAD[:10])
                self.wfile.flush()
                self.server.release.wait(10)  # type: ignore[attr-defined]
            elif path == "/trickle":
                for start in range(0, len(PAYLOAD), 1 << 16):
                    self.wfile.write(PAYLOAD[start : start + (1 << 16)])
                    self.wfile.flush()
                    if self.server.release.wait(0.05):  # type: ignore[attr-defined]
                        return
            else:
                self.wfile.write(PAYLOAD)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.release = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.release.set()  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_whole_download_lands_with_its_hash_checked(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl.sys.stderr, "isatty", lambda: False, raising=False)
    target = tmp_path / "cache" / f"resnet-{DIGEST[:8]}.pth"
    dl.download(f"{server}/whole", target, "resnet weights")
    assert target.read_bytes() == PAYLOAD
    assert leftovers(target.parent) == [target.name]  # no partial file beside it
    plain = tmp_path / "cache" / "no_hash_in_name.pth"
    dl.download(f"{server}/whole", plain, "weights")
    assert plain.read_bytes() == PAYLOAD
    full = tmp_path / "cache" / f"resnet-{DIGEST}.pth"  # the whole digest is a prefix too
    dl.download(f"{server}/whole", full, "weights")
    assert full.read_bytes() == PAYLOAD
    unsized = tmp_path / "cache" / "unsized.pth"  # no length announced: read to the end
    dl.download(f"{server}/unsized", unsized, "weights")
    assert unsized.read_bytes() == PAYLOAD


def test_progress_on_a_terminal(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dl.sys.stderr, "isatty", lambda: True, raising=False)
    dl.download(f"{server}/whole", tmp_path / "w.pth", "weights")
    err = capsys.readouterr().err  # log lines may be there too, when logging goes to stderr
    size = len(PAYLOAD) / 1e6
    assert f"\r  {size:.1f} MB (100%)\n" in err
    steps = re.findall(r"\r  [0-9.]+ MB \(([0-9]+)%\)", err)
    # one update per 1 MiB chunk of 3.012 MiB (33.2%, 66.4%, 99.6%, rounded down), then the tail
    assert steps == ["33", "66", "99", "100"]


@pytest.mark.parametrize(
    ("route", "name", "message"),
    [
        ("/whole", f"resnet-{'0' * 8}.pth", "downloaded resnet-00000000.pth does not match its "
         "hash; try again"),
        ("/whole", f"resnet-{NEAR_MISS}.pth", f"downloaded resnet-{NEAR_MISS}.pth does not match "
         "its hash; try again"),
        ("/short", "w.pth", f"download of {{url}} ended early ({len(PAYLOAD)} of "
         f"{len(PAYLOAD) + 100} bytes)"),
        ("/missing", "w.pth", "could not download the weights: Not Found"),
    ],
)  # fmt: skip
def test_a_bad_download_is_one_error_and_leaves_nothing(server, tmp_path, route, name, message):
    target = tmp_path / name
    url = f"{server}{route}"
    with pytest.raises(WeightsError) as caught:
        dl.download(url, target, "the weights")
    assert str(caught.value) == message.format(url=url)
    assert leftovers(tmp_path) == []


def test_a_stalled_server_is_given_up_on_after_the_read_timeout(server, tmp_path, monkeypatch):
    monkeypatch.setenv("VIZCLI_DOWNLOAD_TIMEOUT", "0.5")
    started = time.monotonic()
    with pytest.raises(WeightsError) as caught:
        dl.download(f"{server}/stall", tmp_path / "w.pth", "the weights")
    assert 0.4 < time.monotonic() - started < 5
    assert str(caught.value) == "could not download the weights: timed out"
    assert leftovers(tmp_path) == []


def test_a_slow_download_stops_at_the_deadline(server, tmp_path, monkeypatch):
    monkeypatch.setenv("VIZCLI_DOWNLOAD_DEADLINE", "0.3")
    url = f"{server}/trickle"
    started = time.monotonic()
    with pytest.raises(WeightsError) as caught:
        dl.download(url, tmp_path / "w.pth", "the weights")
    assert time.monotonic() - started < 10  # stops after the first chunk (about 0.8 s)
    assert (
        str(caught.value) == f"download of {url} took longer than VIZCLI_DOWNLOAD_DEADLINE allows"
    )
    assert leftovers(tmp_path) == []


def test_a_folder_that_cannot_be_made_is_named(server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(WeightsError) as caught:
        dl.download(f"{server}/whole", blocker / "sub" / "w.pth", "the weights")
    assert str(caught.value) == f"cannot create {blocker / 'sub'}: Not a directory"


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, 30.0), ("", 30.0), ("  ", 30.0), (" 2.5 ", 2.5), ("1e-3", 0.001), ("7", 7.0)],
)
def test_the_read_timeout_comes_from_the_environment(monkeypatch, text, expected):
    if text is None:
        monkeypatch.delenv("VIZCLI_DOWNLOAD_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("VIZCLI_DOWNLOAD_TIMEOUT", text)
    assert dl.read_timeout() == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "VIZCLI_DOWNLOAD_TIMEOUT must be a number of seconds, got 'soon'"),
        ("0", "VIZCLI_DOWNLOAD_TIMEOUT must be positive, got '0'"),
        ("-4", "VIZCLI_DOWNLOAD_TIMEOUT must be positive, got '-4'"),
        ("nan", "VIZCLI_DOWNLOAD_TIMEOUT must be positive, got 'nan'"),
    ],
)
def test_a_bad_timeout_is_a_usage_error(monkeypatch, text, message):
    monkeypatch.setenv("VIZCLI_DOWNLOAD_TIMEOUT", text)
    with pytest.raises(UsageError) as caught:
        dl.read_timeout()
    assert str(caught.value) == message


def test_reachable_is_a_bounded_probe(monkeypatch):
    monkeypatch.setenv("VIZCLI_DOWNLOAD_TIMEOUT", "1")
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert dl.reachable("127.0.0.1", port)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once this closes
    assert not dl.reachable("127.0.0.1", port)


def test_the_log_says_what_comes_from_where(server, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("VIZCLI_DOWNLOAD_TIMEOUT", "7")
    target = tmp_path / "w.pth"
    with caplog.at_level("INFO", logger="vizcli"):
        dl.download(f"{server}/whole", target, "ResNet18_Weights.IMAGENET1K_V1")
    assert [r.getMessage() for r in caplog.records] == [
        f"downloading ResNet18_Weights.IMAGENET1K_V1 from {server}/whole to {target} "
        "(gives up after 7 s without data)",
        f"whole, {len(PAYLOAD) / 1e6:.1f} MB",
    ]
