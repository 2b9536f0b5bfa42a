"""The Dockerfile built and run with podman: the node in the container serves a real call, answers
/live, passes its own HEALTHCHECK, runs unprivileged, and stops cleanly on SIGTERM.

Opt-in (`make container-test`): building takes minutes. Host networking, so the container reaches
the RabbitMQ and MariaDB on localhost that the rest of the suite uses, in its own namespace and
database (the `stack` fixture).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import socket
import subprocess
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from tests.support.services import AMQP_URL, ROOT, missing
from tests.support.stack import Stack
from tests.support.waiting import wait_for

PODMAN = shlex.split(os.environ.get("BEDS_PODMAN", "podman"))
BASE = os.environ.get("BEDS_PYTHON_IMAGE", "python:3.11-slim-bookworm")
IMAGE = "localhost/beds:container-test"
# Where a TLS-intercepting proxy sits between the build and PyPI, the host's CA bundle is the
# one that verifies it; it is mounted into the build's RUN steps only, never into the image.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Limits the container may set without CAP_SYS_RESOURCE (which sandboxes like ours lack).
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]

pytestmark = [
    pytest.mark.skipif(os.environ.get("BEDS_CONTAINER_TEST") != "1",
                       reason="builds the image (minutes): run `make container-test`"),
    pytest.mark.timeout(1800),   # a first build on vfs storage installs every wheel
]


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


@pytest.fixture(scope="module")
def image() -> str:
    try:
        podman("version")
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = f"podman does not run here: {exc}"
        missing(reason)
    build = ["build", "--format", "docker", "--isolation", "chroot", "--network", "host",
             "--build-arg", f"PYTHON_IMAGE={BASE}", "--target", "runtime", "-t", IMAGE]
    if CA_BUNDLE.is_file():
        build += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    done = podman(*build, str(ROOT), timeout=1800, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return IMAGE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def container(image: str, stack: Stack, tmp_path: Path) -> Iterator[tuple[str, int]]:
    # The test namespace and database, with [ops] http_listen back on the image's variable.
    env = tomllib.loads(stack.env_file.read_text())
    env["ops"]["http_listen"] = "${BEDS_HTTP_LISTEN}"
    env_file = tmp_path / "env.toml"
    env_file.write_text(tomli_w.dumps(env))
    env_file.chmod(0o644)   # read by the image's unprivileged user
    port = _free_port()
    name = f"beds-test-{secrets.token_hex(3)}"
    podman("run", "-d", "--name", name, "--network", "host", *LIMITS,
           "-v", f"{env_file}:/run/beds/env.toml:ro", "-e", "BEDS_ENV_FILE=/run/beds/env.toml",
           "-e", "BEDS_MYSQL_PASSWORD=unused", "-e", f"BEDS_HTTP_LISTEN=0.0.0.0:{port}", image)
    try:
        yield name, port
    finally:
        podman("rm", "-f", "-t", "5", name, check=False)


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read()
    except OSError:
        return 0, b""


def test_the_image_is_unprivileged_with_a_health_check_and_a_public_listener(image: str) -> None:
    info = json.loads(podman("image", "inspect", image).stdout)[0]
    assert info["Config"]["User"] == "10001:10001"
    assert "BEDS_HTTP_LISTEN=0.0.0.0:9464" in info["Config"]["Env"]
    assert "/live" in " ".join(info["Healthcheck"]["Test"])
    listing = podman("run", "--rm", *LIMITS, "--entrypoint", "ls", image, "-A", "/app").stdout
    assert sorted(listing.split()) == ["beds", "config", "schema", "templates"]


async def test_the_container_serves_calls_and_answers_live(container: tuple[str, int],
                                                           stack: Stack) -> None:
    name, port = container
    await wait_for(lambda: _get(port, "/live")[0] == 200, timeout=120, interval=0.5)
    await wait_for(lambda: _get(port, "/ready")[0] == 200, timeout=60, interval=0.5)
    assert json.loads(_get(port, "/ready")[1])["ready"] is True

    from beds.client import Client

    async with Client(AMQP_URL, stack.exchange, default_timeout=20) as client:
        reply = await client.call("film", "fetch", {"film_id": 1})
    assert reply.data and reply.data[0]["FID"] == 1

    health = await asyncio.to_thread(podman, "healthcheck", "run", name, check=False)
    assert health.returncode == 0, health.stdout + health.stderr
    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"

    podman("stop", "-t", "30", name)
    state = json.loads(podman("inspect", name).stdout)[0]["State"]
    assert state["ExitCode"] == 0
    logs = podman("logs", name)
    assert '"event":"node.stopped"' in (logs.stdout + logs.stderr).replace(" ", "")
