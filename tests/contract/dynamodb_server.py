"""A DynamoDB-compatible server for the tests: moto in server mode, started as its own process
on a free loopback port and spoken to over HTTP through aioboto3, like any DynamoDB endpoint
(real API calls, no in-process mock). `BEDS_TEST_DYNAMODB_URL=http://host:port` points the
tests at a running server instead (DynamoDB Local from compose.yaml)."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """`python -m moto.server` on 127.0.0.1:<free port>, stopped with the session."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: the server logs every request, and a full pipe would stall it.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop(), with the server)

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("moto.server") is not None

    def start(self, timeout: float = 30.0) -> str:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"moto server exited with {self.process.returncode}: {err}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return f"127.0.0.1:{self.port}"
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto server did not listen on port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.log.close()
