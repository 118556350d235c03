"""Helpers for the service tests: a real ``frameseek serve`` (uvicorn) in a subprocess, and a tiny HTTP
file server (with redirects) for link tests."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

TOKEN = "test-token-0123456789abcdef"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running server process and how to talk to it."""

    process: subprocess.Popen[bytes]
    url: str
    home: Path
    log: Path
    token: str | None

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, token: str | None = "default", **options: object) -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(options.pop("headers", {}))  # type: ignore[call-overload]
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **options)  # type: ignore[arg-type]

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def serve_command(port: int, media: Sequence[Path] = (), extra: Sequence[str] = ()) -> list[str]:
    media_args = [arg for folder in media for arg in ("--media", str(folder))]
    return [sys.executable, "-m", "frameseek.service", "--port", str(port), *media_args, *extra]


def start_server(
    home: Path,
    *,
    media: Sequence[Path] = (),
    token: str | None = TOKEN,
    extra: Sequence[str] = (),
    ready_timeout: float = 180.0,
) -> Server:
    """Start ``python -m frameseek.service`` on a free port; return once ``/health`` says the model is ready."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "FRAMESEEK_HOME": str(home)}
    env.pop("FRAMESEEK_TOKEN", None)
    if token:
        env["FRAMESEEK_TOKEN"] = token
    log = home / f"server-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            serve_command(port, media, extra), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", home, log, token)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=2).json().get("ready"):
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the server was not ready within {ready_timeout} s:\n{server.output()}")


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``/redirect?to=<url>`` answers 302 to ``url``."""

    def do_GET(self) -> None:
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def file_server(folder: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """An HTTP server for ``folder`` on ``host`` (a thread); yields its base URL."""
    handler = functools.partial(_Files, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def wait_job(client: httpx.Client, job_id: str, states: Sequence[str], timeout: float = 120.0) -> dict:
    """Poll ``GET /jobs/{id}`` until its state is one of ``states``; the job's last JSON."""
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job.get("state") in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {states} in {timeout} s: {job}")
