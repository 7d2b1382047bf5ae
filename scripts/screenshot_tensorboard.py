"""Take the README's TensorBoard screenshot: serve a logdir, load the Images tab in headless
Chromium, save a PNG. Redo it with `make demo`, then
`.venv/bin/python scripts/screenshot_tensorboard.py`.

Needs Chromium (Debian: apt-get install chromium). Flags: no sandbox (root), no GPU,
no background networking (the machine may have no network).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("logdir", nargs="?", default=str(ROOT / "demo_out" / "runs"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "tensorboard_images.png"))
    parser.add_argument("--tab", default="images")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("error: Chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", args.logdir, "--host", "127.0.0.1",
         "--port", str(port), "--load_fast", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(base + "/data/runs", timeout=2) as response:
                    if json.loads(response.read()):
                        break
            except OSError:
                pass
            time.sleep(0.5)
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,1000",
                 "--virtual-time-budget=20000", "--hide-scrollbars", f"--screenshot={args.out}",
                 f"{base}/#{args.tab}"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180,
            )  # fmt: skip
        print(f"wrote {args.out}")
    finally:
        server.terminate()
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
