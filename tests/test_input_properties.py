"""Property-based input suite: random and mutated market and scenario files through the CLI.

Hypothesis writes TOML files (random regions, flows, prices, elasticities and measures, some
valid, some with one field mutated to a hostile value: negative, zero, huge, inf, nan, a
string, a boolean, an unknown region or field, a missing field) and runs ``validate`` and
``run`` with ``typer.testing.CliRunner``. The contract, for every file:

- exit 2, with the file named and no traceback (``validate`` and ``run`` agree), or
- a result (exit 0) whose scenarios are solved: finite numbers, non-negative flows, market
  clearing recomputed from the Dataset's flows and production, or
- exit 3 with the scenarios that did not solve flagged (``converged = 0``, NaN results),

never a traceback, a hang (each call runs under an alarm) or a non-finite solved number.
Bounded for CI by the ``tradepolicy-inputs`` hypothesis profile (examples from
``TP_PROPERTY_EXAMPLES``, default 120); the figures are printed in pytest's terminal summary.
"""

from __future__ import annotations

import math
import os
import signal
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import property_figures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toy import to_toml
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy.cli import NOT_SOLVED_EXIT, app
from tradepolicy.measures.base import WELFARE_ENTRIES

settings.register_profile(
    "tradepolicy-inputs",
    max_examples=int(os.environ.get("TP_PROPERTY_EXAMPLES", "120")),
    deadline=None,  # a hang is caught by the alarm below, slow CI machines vary
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("tradepolicy-inputs")
CALL_SECONDS = 30  # a call taking longer is a hang
POOL = ["CHN", "USA", "EU", "JPN", "KOR", "AUS", "IDN", "ROW"]
HOSTILE: list[Any] = [-1.0, 0.0, 1e300, -1e300, math.inf, -math.inf, math.nan, 25, "x", True, []]
runner = CliRunner()
FIGURES: Counter[str] = Counter()


# -- strategies -------------------------------------------------------------------------------
def _pos(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def market_dicts(draw: st.DrawFn) -> dict[str, Any]:
    regions = draw(st.lists(st.sampled_from(POOL), min_size=2, max_size=5, unique=True))
    flows: dict[str, dict[str, float]] = {}
    for o in regions:
        row = {}
        for d in regions:
            if draw(st.booleans()) or o == d:
                row[d] = draw(_pos(0.5, 5e4))
        if row and draw(st.integers(0, 4)):  # some regions produce nothing
            flows[o] = row
    if not flows:
        flows[regions[0]] = {regions[0]: 100.0}

    def table(lo: float, hi: float) -> dict[str, float]:
        t = {"default": draw(_pos(lo, hi))}
        for r in draw(st.lists(st.sampled_from(regions), max_size=2, unique=True)):
            t[r] = draw(_pos(lo, hi))
        return t

    m: dict[str, Any] = {
        "id": "m",
        "commodity": "test oxide",
        "base_year": 2024,
        "quantity_unit": "t",
        "currency": "USD",
        "regions": regions,
        "base_price": table(10.0, 1e5),
        "elasticities": {
            "supply": table(0.0, 3.0),
            "demand": table(0.05, 2.0),
            "substitution": table(0.3, 10.0),
        },
        "flows": flows,
    }
    if draw(st.booleans()):
        o, d = draw(st.sampled_from(regions)), draw(st.sampled_from(regions))
        if o != d:
            m["base_tariffs"] = {o: {d: draw(_pos(0.0, 0.5))}}
    return m


def _some(draw, regions: list[str], lo: int = 1) -> list[str]:
    return draw(st.lists(st.sampled_from(regions), min_size=lo, max_size=3, unique=True))


def _measure(draw: st.DrawFn, m: dict[str, Any]) -> dict[str, Any]:
    """One measure of any type with fields in (or near) their allowed ranges."""
    regions = m["regions"]
    producers = list(m["flows"])
    price = m["base_price"]["default"]
    kind = draw(
        st.sampled_from(
            [
                "tariff",
                "export_tax",
                "price_floor",
                "price_gap_subsidy",
                "offtake",
                "import_quota",
                "tariff_rate_quota",
                "export_quota",
                "stockpile_release",
                "stockpile_purchase",
                "diversification_cap",
                "supply_shock",
                "demand_shift",
            ]
        )
    )
    r1 = draw(st.sampled_from(regions))
    pr = draw(st.sampled_from(producers))
    out: dict[str, Any] = {"type": kind}
    if kind == "tariff":
        out |= {"importers": _some(draw, regions), "rate": draw(_pos(0.0, 1.0))}
        if draw(st.booleans()):
            out["exporters"] = _some(draw, regions)
    elif kind == "export_tax":
        out |= {"exporter": pr, "rate": draw(_pos(-0.5, 1.0))}
    elif kind == "price_floor":
        out |= {
            "importers": _some(draw, regions),
            "floor": price * draw(_pos(0.5, 3.0)),
            "exempt": draw(st.lists(st.sampled_from(regions), max_size=2, unique=True)),
        }
        if draw(st.booleans()):
            out["levy_cap"] = price * draw(_pos(0.0, 1.0))
        if draw(st.booleans()):
            out["collector"] = "exporters"
    elif kind == "price_gap_subsidy":
        out |= {
            "producers": [pr],
            "strike": price * draw(_pos(0.5, 2.0)),
            "kind": draw(st.sampled_from(["one_sided", "two_sided"])),
        }
        if draw(st.booleans()):
            out["covered_volume"] = draw(_pos(0.0, 1e4))
    elif kind == "offtake":
        out |= {
            "buyers": {r1: 1.0},
            "sellers": [pr],
            "volume": draw(_pos(1.0, 1e4)),
            "price": price * draw(_pos(0.5, 2.0)),
            "disposition": draw(st.sampled_from(["stockpile", "resell"])),
        }
    elif kind in ("import_quota", "tariff_rate_quota"):
        out |= {"importers": [r1], "exporters": [pr], "quantity": draw(_pos(0.0, 1e4))}
        if kind == "tariff_rate_quota":
            lo = draw(_pos(0.0, 0.5))
            out |= {"quantity": out["quantity"] + 1.0, "in_rate": lo, "out_rate": lo + 0.5}
    elif kind == "export_quota":
        out |= {"exporter": pr, "quantity": draw(_pos(0.0, 1e4))}
    elif kind.startswith("stockpile"):
        out |= {"region": r1, "quantity": draw(_pos(0.1, 5e4))}
    elif kind == "diversification_cap":
        out |= {"importers": [r1], "max_share": draw(_pos(0.2, 0.95))}
    elif kind == "supply_shock":
        out |= {"region": pr, "fraction": draw(_pos(0.0, 0.9))}
    else:
        out |= {"region": r1, "fraction": draw(_pos(-0.9, 2.0))}
    return out


def _paths(d: Any, prefix: tuple = ()) -> list[tuple]:
    """Every leaf path of nested dicts and lists."""
    if isinstance(d, dict):
        return [p for k, v in d.items() for p in _paths(v, (*prefix, k))]
    if isinstance(d, list) and d and all(isinstance(x, dict) for x in d):
        return [p for i, v in enumerate(d) for p in _paths(v, (*prefix, i))]
    return [prefix] if prefix else []


def _mutate(draw: st.DrawFn, data: dict[str, Any]) -> str:
    """Change one leaf: a hostile value, an unknown region, a deletion or an extra field."""
    paths = [p for p in _paths(data) if p[-1] not in ("id", "market")]
    path = draw(st.sampled_from(paths))
    parent = data
    for k in path[:-1]:
        parent = parent[k]
    how = draw(st.sampled_from(["value", "region", "delete", "extra"]))
    if how == "value":
        parent[path[-1]] = draw(st.sampled_from(HOSTILE))
    elif how == "region":
        parent[path[-1]] = "XXX" if not isinstance(parent[path[-1]], list) else ["XXX"]
    elif how == "delete":
        del parent[path[-1]]
    else:
        parent["unknown_field"] = 1.0
    return f"{how}:{'.'.join(map(str, path))}"


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], str]:
    m = draw(market_dicts())
    scen: dict[str, Any] = {"market": "m.toml", "scenario": []}
    for i in range(draw(st.integers(1, 3))):
        measures = [_measure(draw, m) for _ in range(draw(st.integers(1, 3)))]
        scen["scenario"].append({"name": f"s{i}", "measure": measures})
    mutation = "none"
    target = draw(st.sampled_from(["market", "scenario", "none"]))
    if target != "none":
        mutation = target + ":" + _mutate(draw, m if target == "market" else scen)
    return m, scen, mutation


# -- the contract -----------------------------------------------------------------------------
def _alarm(signum, frame):  # pragma: no cover - only on a hang
    raise TimeoutError(f"a CLI call took more than {CALL_SECONDS} s")


def _invoke(*args: str):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CALL_SECONDS)
    try:
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _no_traceback(res, what: str) -> None:
    assert res.exception is None or isinstance(res.exception, SystemExit), (
        f"{what}: {type(res.exception).__name__}: {res.exception}\n{res.output}"
    )
    assert "Traceback" not in res.output, res.output


def _check_solved(ds, sub_measures: dict[str, list[dict]]) -> None:
    for scen in ds.tp.scenarios:
        sub = ds.sel(scenario=scen).isel(commodity=0)
        conv = int(sub.converged)
        if conv == 0:
            assert np.isnan(sub.welfare_change.values).all(), scen
            assert str(sub.solver_message.values), scen
            continue
        assert conv == 1, scen
        for name in ("trade_flow", "production", "consumption", *WELFARE_ENTRIES):
            assert np.isfinite(sub[name].values).all(), (scen, name)
        assert np.isfinite(sub.welfare_change.values).all(), scen
        assert (sub.trade_flow.values >= 0).all() and (sub.production.values >= 0).all()
        for name in ("producer_price", "consumer_price"):
            v = sub[name].values
            assert (v[np.isfinite(v)] > 0).all() and not np.isinf(v).any(), (scen, name)
        # market clearing from the Dataset: output = sales + stockpiled offtake volumes
        stocked = sum(
            m["volume"]
            for m in sub_measures.get(scen, [])
            if m["type"] == "offtake" and m.get("disposition", "stockpile") == "stockpile"
        )
        out = sub.production.values
        sold = sub.trade_flow.sum("importer").values
        scale = max(float(out.sum()), 1.0)
        assert abs(float(out.sum() - sold.sum()) - stocked) <= 1e-7 * (scale + stocked), scen
        if not stocked:
            np.testing.assert_allclose(out, sold, rtol=1e-8, atol=1e-8 * scale)


@PROFILE
@given(cases())
def test_cli_contract_on_random_and_mutated_files(case) -> None:
    m, scen, mutation = case
    with tempfile.TemporaryDirectory() as tmp:
        mp, sp, out = Path(tmp, "m.toml"), Path(tmp, "s.toml"), Path(tmp, "r.nc")
        mp.write_text(to_toml(m), encoding="utf-8")
        sp.write_text(to_toml(scen), encoding="utf-8")
        val = _invoke("validate", str(mp), str(sp))
        _no_traceback(val, "validate")
        assert val.exit_code in (0, 2), val.output
        res = _invoke("run", str(sp), "-q", "-o", str(out))
        _no_traceback(res, "run")
        FIGURES["examples"] += 1
        FIGURES["mutated" if mutation != "none" else "unmutated"] += 1
        if val.exit_code == 2:
            # bad input: both commands refuse it, naming the file
            assert res.exit_code == 2, (mutation, val.output, res.output)
            text = " ".join(val.output.split())
            assert "m.toml" in text or "s.toml" in text, text
            assert not out.exists()
            FIGURES["exit 2 (refused)"] += 1
            return
        assert res.exit_code in (0, NOT_SOLVED_EXIT), (mutation, res.output)
        ds = tp.open_results(out)
        measures = {s["name"]: s.get("measure", []) for s in scen["scenario"]}
        _check_solved(ds, measures)
        failed = int((ds.converged == 0).sum())
        assert (failed > 0) == (res.exit_code == NOT_SOLVED_EXIT), res.output
        FIGURES["exit 3 (a scenario not solved)" if failed else "exit 0 (all solved)"] += 1
        FIGURES["scenarios solved"] += int((ds.converged == 1).sum()) - 1
        FIGURES["scenarios not solved"] += failed


def teardown_module() -> None:
    n = FIGURES["examples"]
    if not n:
        return
    parts = [
        f"{k}: {v} ({v / n:.0%})"
        for k, v in FIGURES.items()
        if k.startswith("exit") or k in ("mutated", "unmutated")
    ]
    property_figures.report(
        f"input property suite: {n} examples; "
        + "; ".join(parts)
        + f"; scenarios solved {FIGURES['scenarios solved']}, "
        f"not solved {FIGURES['scenarios not solved']}"
    )
