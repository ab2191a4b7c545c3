"""Fixtures: the emulator binary on a free loopback port, and boto3 clients pointed at it."""

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]


def _binary() -> str:
    path = os.environ.get("SITEWISE_EMULATOR_BIN", str(REPO / "target/debug/sitewise-emulator"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"emulator binary not found at {path}; build it with cargo build -p sitewise-emulator")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    def __init__(self, *flags: str):
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [_binary(), "--bind", f"127.0.0.1:{self.port}", *flags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.admin("GET", "/health")
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode())
                time.sleep(0.05)
        raise RuntimeError("emulator did not start within 20 s")

    def admin(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.endpoint}/_emulator{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
            return json.loads(text) if text and text != "ok" else text

    def client(self):
        return boto3.client(
            "iotsitewise",
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
            config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1, "mode": "standard"}),
        )

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def emulator():
    emu = Emulator("--no-quotas")
    yield emu
    emu.stop()


@pytest.fixture
def client(emulator):
    return emulator.client()


@pytest.fixture
def plant(emulator):
    """A line model with a Machines hierarchy, one line and three machines under it."""
    return emulator.admin(
        "POST",
        "/seed",
        {
            "models": [
                {"name": "Machine", "externalId": "machine"},
                {
                    "name": "Line",
                    "externalId": "line",
                    "hierarchies": [
                        {"name": "Machines", "externalId": "machines", "childModel": "externalId:machine"}
                    ],
                },
            ],
            "assets": [{"name": "line-1", "externalId": "line-1", "model": "externalId:line"}]
            + [
                {
                    "name": f"m{i}",
                    "externalId": f"m{i}",
                    "model": "externalId:machine",
                    "parent": "externalId:line-1",
                    "hierarchy": "externalId:machines",
                }
                for i in range(3)
            ],
        },
    )
