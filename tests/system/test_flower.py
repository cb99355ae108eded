"""`scimflow flower`: a real Flower process on loopback and the Redis broker (database 3), which
serves nothing without its basic-auth credential and never starts without one."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import REDIS_HOST, REDIS_PORT, free_port, require_redis

BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/3"
CREDENTIAL = "admin:flower-test-secret"
START_SECONDS = 60


def _flower(tmp_path: Path, port: int, credential: str | None) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("SCIMFLOW_", "FLOWER_"))}
    env["SCIMFLOW_BROKER_URL"] = BROKER_URL
    if credential is not None:
        secret = tmp_path / "flower_basic_auth"
        secret.write_text(credential + "\n")
        env["SCIMFLOW_FLOWER_BASIC_AUTH_FILE"] = str(secret)
    return subprocess.Popen(
        [sys.executable, "-m", "scimflow.ops.cli", "flower", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def _status(url: str, credential: str | None = None) -> int:
    request = urllib.request.Request(url)
    if credential is not None:
        token = base64.b64encode(credential.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _wait_until_serving(process: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"flower exited with {process.returncode}: {process.stderr.read()}")  # type: ignore[union-attr]
        try:
            if _status(f"{base}/healthcheck") == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"flower did not serve {base}/healthcheck within {START_SECONDS} s")


@pytest.fixture
def flower(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    require_redis()
    port = free_port()
    process = _flower(tmp_path, port, CREDENTIAL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(process, base)
        yield base, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def test_every_page_asks_for_the_credential(flower: tuple[str, subprocess.Popen[str]]) -> None:
    base, _ = flower

    assert _status(f"{base}/") == 401
    assert _status(f"{base}/workers") == 401
    assert _status(f"{base}/api/workers") == 401
    assert _status(f"{base}/", "admin:wrong") == 401


def test_the_credential_opens_flower(flower: tuple[str, subprocess.Popen[str]]) -> None:
    base, _ = flower

    assert _status(f"{base}/", CREDENTIAL) == 200
    assert _status(f"{base}/api/workers", CREDENTIAL) == 200
    # The queue lengths: Flower reads them only through a broker URL it knows (redis://).
    assert _status(f"{base}/broker", CREDENTIAL) == 200
    assert _status(f"{base}/api/queues/length", CREDENTIAL) == 200


def test_the_credential_is_not_on_the_command_line(
    flower: tuple[str, subprocess.Popen[str]],
) -> None:
    _, process = flower

    # The same process: `scimflow flower` replaced itself with Flower.
    argv = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
    assert b"flower" in argv
    assert not any(b"flower-test-secret" in arg for arg in argv)


@pytest.mark.parametrize(
    "credential",
    [None, "", "admin", "admin:", ":s3cr3t-leak", "a:s3cr3t-leak,c", " a:s3cr3t-leak"],
)
def test_flower_refuses_to_start_without_a_usable_credential(
    tmp_path: Path, credential: str | None,
) -> None:
    port = free_port()
    process = _flower(tmp_path, port, credential)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 2
    assert "refuses to start" in err
    assert "s3cr3t-leak" not in err  # a malformed credential may still hold a password


def test_flower_refuses_the_embedded_mode(tmp_path: Path) -> None:
    secret = tmp_path / "flower_basic_auth"
    secret.write_text(CREDENTIAL)
    env = {name: value for name, value in os.environ.items() if not name.startswith("SCIMFLOW_")}
    env["SCIMFLOW_FLOWER_BASIC_AUTH_FILE"] = str(secret)
    result = subprocess.run(
        [sys.executable, "-m", "scimflow.ops.cli", "flower", "--port", str(free_port())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "SCIMFLOW_BROKER_URL is not set" in result.stderr
