"""Browser tests of the dashboard: a served app driven by pytest-playwright with Debian's
chromium (Playwright cannot download browsers here). Without chromium the tests are skipped,
unless the CI environment variable is set, where they fail. Screenshots go to
``test-artifacts/ui/`` (git-ignored)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradepolicy.dashboard.config import CHROMIUM as _CHROMIUM
from tradepolicy.dashboard.config import CHROMIUM_ARGS

CHROMIUM = Path(_CHROMIUM)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
VIEWPORT = {"width": 1500, "height": 2200}  # tall: the whole page in one screenshot


def in_ci() -> bool:
    """Whether the tests run in CI (``CI`` set to anything but empty, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session", autouse=True)
def _chromium() -> None:
    """Browser tests need Debian's chromium: in CI its absence fails every browser test (a
    skipped browser suite must not pass CI); locally they are skipped with the reason."""
    if not CHROMIUM.is_file():
        msg = (
            f"chromium not found at {CHROMIUM}: install it (apt-get install chromium) or point "
            "TP_CHROMIUM at a chromium binary"
        )
        if in_ci():
            pytest.fail(f"{msg}; the browser tests cannot be skipped in CI", pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": VIEWPORT, "accept_downloads": True}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_serving(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=30) as r:  # a page build on a busy machine
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the dashboard did not answer at {url} within {timeout:.0f} s")


@contextlib.contextmanager
def serving(cmd: list[str], port: int, log_path: Path) -> Iterator[str]:
    """Run the dashboard server ``cmd`` (listening on ``port``, its output in ``log_path``)
    and yield its URL once it answers; stop it after. Its log must hold no traceback."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_until_serving(url, proc)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if "Traceback" in log_path.read_text():
        pytest.fail(f"the dashboard server logged a traceback (see {log_path})")


@pytest.fixture(scope="session")
def app_url(artifacts: Path) -> Iterator[str]:
    """``tradepolicy dashboard --port N --no-show`` in a subprocess; stopped after the tests.
    Its log is kept as an artifact and must hold no traceback."""
    port = free_port()
    cmd = [sys.executable, "-m", "tradepolicy.cli", "dashboard", "--port", str(port), "--no-show"]
    with serving(cmd, port, artifacts / "server.log") as url:
        yield url


@pytest.fixture(scope="session")
def base_url(app_url: str) -> str:
    """The served app (replaces pytest-playwright's fallback ``base_url`` fixture, which
    pytest 9 deprecates as a session-scoped instance method)."""
    return app_url
