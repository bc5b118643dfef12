"""Fixtures of the fault-injection suite: malicious pickles and a loopback HTTP server."""

from __future__ import annotations

import builtins
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


class Payload:
    """Unpickling this runs code: it creates ``marker`` (what an attacker's payload would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


def malicious_copy(good: Path, out: Path, marker: Path) -> Path:
    """``good`` (a real checkpoint) with one extra entry whose unpickling runs the payload."""
    ckpt = torch.load(good, map_location="cpu", weights_only=True)
    ckpt["extra"] = Payload(marker)
    torch.save(ckpt, out)
    return out


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_root(tmp_path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (a stand-in for a remote checkpoint store): (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
