"""Solve processes (tradepolicy.dashboard.workers): the edited scenario's 2030 pathway solved
in a worker process equals the one solved in the server's process; what a fresh process cannot
load, or a worker that dies, falls back to the server's process; workers end with it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import tradepolicy as tp
from tradepolicy.dashboard import answer as ans
from tradepolicy.dashboard import workers
from tradepolicy.dashboard.app import serve

pytestmark = pytest.mark.filterwarnings("ignore::tradepolicy.errors.InputWarning")

ROOT = Path(__file__).resolve().parents[1]
SET = ROOT / "scenarios" / "ree_magnets_2030.toml"


@pytest.fixture(scope="module")
def one_process():
    """One solve process for the module's tests (starting one takes a few seconds)."""
    workers.use_solve_processes(1)
    assert workers.wait_ready(120)
    yield
    workers.shutdown()
    assert workers.solve_processes() == 0 and workers.worker_pids() == []


def _pid() -> int:
    return os.getpid()


def _die_in_a_worker(parent: int) -> int:
    """Ends the process it runs in unless that is ``parent`` (a worker killed mid-solve)."""
    if os.getpid() != parent:
        os._exit(3)
    return os.getpid()


def _same_solution(a: xr.Dataset, b: xr.Dataset) -> None:
    """The same variables, coordinates, dims, dtypes and attributes (but when and how long it
    ran), and the same values to 1e-6 relative: run after the rest of the suite in one process
    (CI), the solve here differed from the fresh worker's in the last digits (the cause is not
    isolated; run alone, they are identical)."""
    stamps = ("date_created", "history", "solve_seconds")
    assert set(stamps) <= set(a.attrs)
    xr.testing.assert_identical(
        a.drop_vars(list(a.data_vars)),
        b.drop_vars(list(b.data_vars)).assign_attrs({k: a.attrs[k] for k in stamps}),
    )
    assert list(a.data_vars) == list(b.data_vars)
    for name, x in a.data_vars.items():
        y = b[name]
        assert (x.dims, x.dtype, x.attrs) == (y.dims, y.dtype, y.attrs), name
        if x.dtype.kind != "f":
            xr.testing.assert_identical(x, y)
            continue
        scale = float(np.nanmax(np.abs(x.values), initial=0.0))
        np.testing.assert_allclose(
            y.values, x.values, rtol=1e-6, atol=1e-8 * scale, equal_nan=True, err_msg=name
        )


def test_live_job_in_a_solve_process_equals_the_one_solved_here(one_process):
    """The same Dataset (coordinates, attributes, dtypes; values within the solver's
    tolerance), and the options table, warnings and payers the view reads are those of the
    copy, not derived again."""
    pset = tp.load_scenarios(SET)
    option = pset.scenarios[1]
    stage = ans.first_stage(pset)
    start = ans.policy_start(pset)
    assert workers.run(_pid) != os.getpid()  # a worker is up and takes jobs
    ds, problem, specs = ans.live_job(pset, option, start, stage)
    assert problem == "" and specs is None and ds is not None
    derived = {
        ("table", stage): ans.table_at,
        ("payers",): ans.payers_at,
    }
    kept = {key: ans.DERIVED.get(ds, key, lambda: pytest.fail("derived again")) for key in derived}

    workers.use_solve_processes(0)
    try:
        ans.LIVE_SOLVES.clear()
        here, problem_here, _ = ans.live_job(pset, option, start, stage)
    finally:
        workers.use_solve_processes(1)
        assert workers.wait_ready(120)
    assert here is not ds and problem_here == ""
    _same_solution(ds, here)
    for key, value in kept.items():
        fresh = ans.table_at(here, stage) if key[0] == "table" else ans.payers_at(here)
        pd.testing.assert_frame_equal(value, fresh)
    assert ans.warnings_at(ds, ["baseline", ans.LIVE]) == ans.warnings_at(
        here, ["baseline", ans.LIVE]
    )


def test_a_job_a_fresh_process_cannot_load_is_solved_here(one_process, monkeypatch, caplog):
    """A function of a notebook's session (``__main__``) pickles here but not in a worker:
    it is run in this process, and so is one that cannot be pickled at all."""

    def job() -> int:
        return os.getpid()

    job.__module__, job.__qualname__ = "__main__", "tp_notebook_job"
    monkeypatch.setattr(sys.modules["__main__"], "tp_notebook_job", job, raising=False)
    with caplog.at_level(logging.DEBUG, logger="tradepolicy.dashboard.workers"):
        assert workers.run(job) == os.getpid()
        assert workers.run(lambda: os.getpid()) == os.getpid()
    assert "cannot load the job" in caplog.text
    assert "cannot be pickled" in caplog.text
    assert workers.run(_pid) != os.getpid()  # the worker is still there


def test_a_worker_that_dies_is_replaced_and_the_job_solved_here(one_process, caplog):
    before = workers.worker_pids()
    with caplog.at_level(logging.WARNING, logger="tradepolicy.dashboard.workers"):
        assert workers.run(_die_in_a_worker, os.getpid()) == os.getpid()
    assert "ended unexpectedly" in caplog.text
    assert workers.solve_processes() == 1
    assert workers.wait_ready(120)  # the new worker, once it has loaded the solver
    pid = workers.run(_pid)
    assert pid != os.getpid() and pid not in before
    assert workers.worker_pids() == [pid]


def test_a_new_worker_takes_jobs_once_it_has_loaded_the_solver(one_process):
    """Until a worker has loaded the solver's kernels (a second or two after it starts; its
    first solve would take as long), jobs are solved here; then in the worker, as quickly as
    its next ones."""
    workers.use_solve_processes(2)  # (a new pool)
    try:
        assert not workers.ready()
        assert workers.run(_pid) == os.getpid()
        assert workers.wait_ready(120)
        assert workers.run(_pid) != os.getpid()
        pset = tp.load_scenarios(SET)
        start, stage = ans.policy_start(pset), ans.first_stage(pset)
        times = []
        for floor in (101_000.0, 102_000.0):
            first = pset.scenarios[0]
            option = first.model_copy(
                update={"measures": [first.measures[0].model_copy(update={"floor": floor})]}
            )
            t = time.perf_counter()
            workers.run(ans.live_solved, pset, option, start, stage)
            times.append(time.perf_counter() - t)
        assert times[0] < 3 * times[1] + 0.2, times  # no kernels loaded at the first job
    finally:
        workers.use_solve_processes(1)
        assert workers.wait_ready(120)


def test_the_automatic_mode_sends_only_overlapping_solves_to_its_process(one_process, monkeypatch):
    """``use_solve_processes(None)``, the server's default: one process on two cores or
    more, used while two solves run at once; a solve alone runs here (no copies); a number
    sends every solve to the processes again."""
    assert workers.auto_processes() == (1 if (os.cpu_count() or 1) >= 2 else 0)
    monkeypatch.setattr(workers, "auto_processes", lambda: 1)
    workers.use_solve_processes(None)  # (the fixture's one process kept: the same size)
    try:
        assert workers.automatic() and workers.solve_processes() == 1 and workers.ready()
        monkeypatch.setattr(workers, "solves_running", lambda: 1)  # this solve alone
        assert workers.run(_pid) == os.getpid()
        monkeypatch.setattr(workers, "solves_running", lambda: 2)  # another at once
        assert workers.run(_pid) != os.getpid()
        monkeypatch.setattr(workers, "auto_processes", lambda: 0)  # one core
        workers.use_solve_processes(None)
        assert not workers.automatic() and workers.solve_processes() == 0
        assert workers.run(_pid) == os.getpid()
    finally:
        workers.use_solve_processes(1)
    assert not workers.automatic() and workers.wait_ready(120)
    assert workers.run(_pid) != os.getpid()  # a number: every solve


def test_function_errors_are_raised_here(one_process):
    with pytest.raises(ZeroDivisionError):
        workers.run(divmod, 1, 0)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state  # ended, not yet reaped by its new parent


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_workers_end_when_the_server_process_is_killed():
    """A server killed without shutting its pool down (SIGKILL, the out-of-memory killer)
    leaves no worker behind."""
    code = textwrap.dedent(
        """
        import sys, time
        from tradepolicy.dashboard import workers
        workers.use_solve_processes(2)
        while len(workers.worker_pids()) < 2:
            time.sleep(0.1)
        print(*workers.worker_pids(), flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2 and not any(_gone(p) for p in pids)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
    deadline = time.monotonic() + 10 * workers.PARENT_CHECK_S + 5
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_gone(p) for p in pids)


def test_processes_refused_without_threads_or_below_zero():
    with pytest.raises(ValueError, match="processes"):
        workers.use_solve_processes(-1)
    with pytest.raises(ValueError, match="solve threads"):
        serve(port=0, show=False, threaded=True, threads=0, processes=1)
    assert workers.solve_processes() == 0


def test_cli_refuses_processes_without_threads():
    from typer.testing import CliRunner

    from tradepolicy.cli import app

    result = CliRunner().invoke(app, ["dashboard", "--threads", "0", "--processes", "1"])
    assert result.exit_code != 0
    assert "--processes needs solve threads" in result.output


def test_workers_that_cannot_start_are_given_up(monkeypatch, tmp_path, caplog):
    """Workers that end as they start (here a ``sitecustomize`` that exits): the pool is
    given up once, with a warning, and solves run here."""
    (tmp_path / "sitecustomize.py").write_text("import os\nos._exit(1)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # (read by the new processes only)
    with caplog.at_level(logging.WARNING, logger="tradepolicy.dashboard.workers"):
        workers.use_solve_processes(1)
        try:
            assert workers.run(_pid) == os.getpid()
            deadline = time.monotonic() + 60
            while workers.solve_processes() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert workers.solve_processes() == 0
            assert workers.run(_pid) == os.getpid()
        finally:
            workers.shutdown()
    assert caplog.text.count("could not start") == 1
    assert "restarted" not in caplog.text


def test_workers_do_not_run_the_servers_script_again(tmp_path):
    """A script that serves outside ``if __name__ == "__main__":``: what it does before
    starting the workers is done once (``spawn`` would run it again in each worker)."""
    log_file = tmp_path / "ran.txt"
    script = tmp_path / "serve_script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os
            from tradepolicy.dashboard import workers
            with open({str(log_file)!r}, "a") as f:
                f.write("ran\\n")
            workers.use_solve_processes(2)
            assert workers.wait_ready(120)
            assert workers.run(os.getpid) != os.getpid()  # solved in a worker
            assert workers.solve_processes() == 2 and len(workers.worker_pids()) == 2
            workers.shutdown()
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert log_file.read_text() == "ran\n"
    assert "Traceback" not in done.stderr
