"""Start a dashboard server in a subprocess for the dashboard benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(code: str, port: int, log_file: Path, timeout_s: float) -> subprocess.Popen:
    """Run ``code`` (a ``serve(port=port, ...)`` call) in a subprocess and wait until it answers.

    Parameters
    ----------
    code
        Python source run with ``python -c``; it must serve on 127.0.0.1:``port``.
    port
        The port the server listens on.
    log_file
        Where the server's output goes.
    timeout_s
        Seconds to wait for the first answer.

    Returns
    -------
    subprocess.Popen
        The running server.

    Raises
    ------
    RuntimeError
        If the server exits before it answers.
    TimeoutError
        If it does not answer within ``timeout_s`` (it is killed).
    """
    with log_file.open("w") as out:  # (the server keeps its own copy)
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {log_file}")
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise TimeoutError(f"server did not answer at {url}")
