"""Headless Chromium for the tests that look at a page as a person would: a screenshot decoded to
pixels (PNG decoded with zlib and numpy: no imaging library needed) and the DOM after scripts ran."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

# No name resolves, so a page that needs the network shows it by not rendering.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND"]
INSTALL = "apt-get update && apt-get install -y chromium"


def chromium() -> str:
    """The chromium binary; Debian's package is installed (as root) when it is missing, as .ci/run does."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["sh", "-c", INSTALL], check=True, capture_output=True, timeout=900)
        found = shutil.which("chromium")
    if found is None:
        raise RuntimeError(f"headless Chromium is needed for this test: install Debian's chromium ({INSTALL})")
    return found


def _run(*args: str) -> str:
    # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *OFFLINE, *args]
    result = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    return result.stdout


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 2400) -> Path:
    """A screenshot of the page's first width x height pixels, after its scripts ran."""
    _run(f"--screenshot={png}", f"--window-size={width},{height}", "--virtual-time-budget=10000", page.as_uri())
    return png


def rendered_dom(page: Path) -> str:
    """The page's DOM after its scripts ran (what a person's browser shows)."""
    return _run("--dump-dom", "--virtual-time-budget=10000", page.as_uri())


def png_pixels(path: Path) -> np.ndarray:
    """An 8-bit RGB(A), non-interlaced PNG (what Chromium writes) as a (height, width, channels) array."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    assert depth == 8 and colour in (2, 6) and interlace == 0, "only 8-bit RGB/RGBA, non-interlaced"
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, 1 + width * channels)
    filters, filtered = raw[:, 0], raw[:, 1:].reshape(height, width, channels).astype(np.int32)
    # PNG spec, 9. Filtering: each byte is predicted from a (left), b (up) and c (up-left) of the
    # decoded image. Pixels on one anti-diagonal depend only on earlier ones, so decode a diagonal at once.
    out = np.zeros((height + 1, width + 1, channels), np.int32)  # a zero row above and column to the left
    for d in range(height + width - 1):
        i = np.arange(max(0, d - width + 1), min(height, d + 1))
        j = d - i
        a, b, c = out[i + 1, j], out[i, j + 1], out[i, j]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        f = filters[i][:, None]
        predicted = np.select([f == 1, f == 2, f == 3, f == 4], [a, b, (a + b) // 2, paeth], 0)
        out[i + 1, j + 1] = (filtered[i, j] + predicted) % 256
    return out[1:, 1:].astype(np.uint8)


class _Checked(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self._open: list[tuple[str, str]] = []  # (tag, check key)
        self._text: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        key = dict(attrs).get("data-check")
        if key:
            self._open.append((tag, key))
            self._text[key] = []

    def handle_data(self, data):
        for _, key in self._open:
            self._text[key].append(data)

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            _, key = self._open.pop()
            self.values[key] = "".join(self._text.pop(key)).strip()


def checked_values(dom: str) -> dict[str, str]:
    """The text of every element carrying data-check="key" in the page, by key."""
    parser = _Checked()
    parser.feed(dom)
    return parser.values
