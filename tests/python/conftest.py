"""Fixtures for the MCP-client tests: the real `sandgraph` binary, started per test."""

import contextlib
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# `make test` passes the release build (the one `make run` serves); by hand, the newest of
# the release and debug builds is used.
BINARY = Path(os.environ.get("SANDGRAPH_BIN") or max(
    (p for p in (ROOT / "target" / "release" / "sandgraph", ROOT / "target" / "debug" / "sandgraph")
     if p.exists()),
    key=lambda p: p.stat().st_mtime, default=ROOT / "target" / "release" / "sandgraph"))


ADMIN_TOKEN = "sg_python_test_admin_token_" + os.urandom(8).hex()


def server_env(data_dir: str) -> dict:
    """Environment for a test server: its own data dir, the shared compiled-guest cache,
    and a known admin token."""
    env = dict(os.environ)
    # The embedded store (make test exports NEO4J_URI for the Neo4j tests).
    env.pop("NEO4J_URI", None)
    env.update(
        SANDGRAPH_ADMIN_TOKEN=ADMIN_TOKEN,
        SANDGRAPH_DATA_DIR=data_dir,
        SANDGRAPH_GUEST_DIR=str(ROOT / "build" / "guest"),
        SANDGRAPH_COMPILED_CACHE_DIR=str(ROOT / "target" / "test-compiled-guests"),
        RUST_LOG="warn",
    )
    return env


@pytest.fixture
def binary() -> Path:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run `cargo build --release` (make test does)")
    return BINARY


@pytest.fixture
def data_dir():
    with tempfile.TemporaryDirectory(prefix="sandgraph-test-") as path:
        yield path


@pytest.fixture
def http_server(binary, data_dir):
    """A `sandgraph serve` on a random port; yields its base URL."""
    process = subprocess.Popen(
        [str(binary), "serve", "--bind", "127.0.0.1:0"],
        env=server_env(data_dir),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base = None
        for line in process.stdout:
            if line.startswith("listening on "):
                base = line.split("listening on ", 1)[1].strip()
                break
        if base is None:
            pytest.fail(f"sandgraph exited before listening (code {process.wait()})")
        threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def spawned_server(binary, data_dir, **extra_env):
    """A `sandgraph serve` on a random port with extra environment; yields its base URL."""
    env = server_env(data_dir)
    env.update(extra_env)
    process = subprocess.Popen(
        [str(binary), "serve", "--bind", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base = None
        for line in process.stdout:
            if line.startswith("listening on "):
                base = line.split("listening on ", 1)[1].strip()
                break
        if base is None:
            pytest.fail(f"sandgraph exited before listening (code {process.wait()})")
        threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
