"""A real local HTTP server for the model-zoo download tests (the standard library's
``http.server`` in a thread; nothing of the network layer is mocked), and tarballs laid out
as the original's zoo.

The server serves ``files`` ({path: bytes}) with ``Range`` support, and misbehaves on
request: ``script[path]`` is a list of actions, one consumed per request, among
``500`` (an HTTP status), ``"drop"`` (half the body, then the connection closes),
``"stall"`` (nothing sent for ``stall_seconds``), ``"slow"`` (the body in 16 pieces over
``slow_seconds``), ``("redirect", "/other")``, ``"garbage"`` (200 with bytes that are not
gzip). Every request is recorded (path, Range header, whether it came as a proxy request).
"""

from __future__ import annotations

import io
import shutil
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from deeplab.weights.presets import DATE_SUFFIX


class ZooServer:
    """Serves tarballs on 127.0.0.1 (a free port) until :meth:`stop`."""

    def __init__(self, stall_seconds: float = 3.0, slow_seconds: float = 1.5):
        self.files: dict[str, bytes] = {}
        self.script: dict[str, list] = {}
        self.requests: list[dict] = []
        self.stall_seconds = stall_seconds
        self.slow_seconds = slow_seconds
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 (http.server's name)
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/models/"

    def gets(self, name: str) -> list[dict]:
        """The requests for one file name."""
        return [r for r in self.requests if r["path"].endswith("/" + name)]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        self.requests.append({"path": path, "range": handler.headers.get("Range"),
                              "proxied": handler.path.startswith("http://")})
        actions = self.script.get(path)
        action = actions.pop(0) if actions else None
        if isinstance(action, int):
            handler.send_error(action)
            return
        if isinstance(action, tuple) and action[0] == "redirect":
            handler.send_response(302)
            handler.send_header("Location", action[1])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if action == "stall":
            time.sleep(self.stall_seconds)
            return
        if action == "garbage":
            body = b"<html>this is not a tarball</html>" * 100
        elif path not in self.files:
            handler.send_error(404)
            return
        else:
            body = self.files[path]
        start = 0
        requested = handler.headers.get("Range")
        if requested and requested.startswith("bytes=") and action != "garbage":
            start = int(requested[len("bytes="):].split("-")[0])
            if start >= len(body):
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(body)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            handler.send_response(200)
        handler.send_header("Content-Length", str(len(body) - start))
        handler.end_headers()
        body = body[start:]
        if action == "drop":
            handler.wfile.write(body[:len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        if action == "slow":
            pieces = np.array_split(np.frombuffer(body, np.uint8), 16)
            for piece in pieces:
                handler.wfile.write(piece.tobytes())
                handler.wfile.flush()
                time.sleep(self.slow_seconds / len(pieces))
            return
        handler.wfile.write(body)


def fake_zoo_tarball(tarball: str, data_bytes: int = 300_000, seed: int = 0) -> bytes:
    """A tarball laid out as the zoo's whose checkpoint files are random bytes: enough for
    the download and cache tests, which never import it."""
    rng = np.random.default_rng(seed)
    folder = DATE_SUFFIX.sub("", tarball)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for name, size in (("model.ckpt-30000.index", 2_000),
                           ("model.ckpt-30000.data-00000-of-00001", data_bytes),
                           ("frozen_inference_graph.pb", 1_000)):
            member = tarfile.TarInfo(f"{folder}/{name}")
            member.size = size
            archive.addfile(member, io.BytesIO(rng.bytes(size)))
    return buffer.getvalue()


def write_zoo_tarball(model, folder: Path, tarball: str, step: int = 30000,
                      compressed: bool = True, extra=None) -> Path:
    """A tarball laid out as the original's: ``<name without date>/model.ckpt-N.*`` and a
    ``frozen_inference_graph.pb`` (placeholder bytes: the import must not read it).
    ``extra(inner_folder)`` may add or change files before it is packed."""
    from deeplab.weights.checkpoint_export import export_tf1_checkpoint

    inner = folder / DATE_SUFFIX.sub("", tarball)
    export_tf1_checkpoint(model, inner / f"model.ckpt-{step}", global_step=step)
    (inner / "frozen_inference_graph.pb").write_bytes(b"not read by the import")
    if extra is not None:
        extra(inner)
    path = folder / (tarball + (".tar.gz" if compressed else ".tar"))
    with tarfile.open(path, "w:gz" if compressed else "w", **(
            {"compresslevel": 1} if compressed else {})) as archive:
        archive.add(inner, arcname=inner.name)
    shutil.rmtree(inner)
    return path


def randomize(model, seed: int = 0):
    """Random weights (positive moving variances), so an import that misses a variable
    shows."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if "moving_variance" in variable.path:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
        else:
            variable.assign(rng.normal(0, 0.05, variable.shape).astype("float32"))
    return model


def assert_same_weights(model, other):
    for mine, theirs in zip(model.weights, other.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs), err_msg=mine.path)
