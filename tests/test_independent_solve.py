"""An independent solve of the levels model (DESIGN §3), written here from the equations.

Nothing of the project's model, residual, instruments or solver is used on this side: the
CES system is written in its textbook β form (not the calibrated-share form of
``tradepolicy.model.levels``), calibrated here from the raw data, and solved with MINPACK
(``scipy.optimize.root``, finite-difference Jacobian) on log producer prices. Complementarity
(a quota's rent, a release larger than demand) is handled by enumerating the regimes and
checking the one found, the plainest correct method. ``tp.solve`` must agree to 1e-8 on
prices and flows on small random markets, for tariffs, price floors (variable levy, with and
without a cap), import quotas (slack and binding), price-gap subsidies and stock releases
(below and beyond demand).

    S_o  = S0_o (p̃_o/p0_o)^ε_o (1 − shock_o),  p̃_o = max(p_o, strike_o)
    q_od = p_o (1 + t_od) + ρ·[od in quota] + L_od,  L_od = min(cap, max(0, floor − pre-levy))
    P_d  = (Σ_o β_od q_od^(1−σ_d))^(1/(1−σ_d)),  β_od = (X0_od/D0_d)(q0_od/P0_d)^σ_d
    D_d  = D0_d (P_d/P0_d)^(−η_d) (1 + shift_d);  A_d = max(0, D_d − release_d)
    X_od = β_od q_od^(−σ_d) P_d^σ_d A_d;          S_o = Σ_d X_od
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from builders import abstract_regions
from scipy import optimize

import tradepolicy as tp
from tradepolicy.measures import (
    DemandShift,
    ImportQuota,
    PriceFloor,
    PriceGapSubsidy,
    StockpileRelease,
    SupplyShock,
    Tariff,
)

RTOL = 1e-8


# -- the data and the independent model -------------------------------------------------------
@dataclass
class Data:
    regions: list[str]
    X0: np.ndarray  # (N,N) exporter × importer
    p0: np.ndarray
    t0: np.ndarray
    eps: np.ndarray
    eta: np.ndarray
    sigma: np.ndarray


def random_data(seed: int) -> Data:
    """4–5 regions; the last one consumes only in odd seeds; some pairs do not trade."""
    rng = np.random.default_rng(seed)
    n = 4 + seed % 2
    X0 = rng.uniform(5.0, 200.0, (n, n)) * (rng.random((n, n)) < 0.7)
    np.fill_diagonal(X0, rng.uniform(50.0, 500.0, n))
    X0[0, :] = np.maximum(X0[0, :], 10.0)  # a supplier everyone buys from (a quota target)
    if seed % 2:
        X0[-1, :] = 0.0  # consumer only
    t0 = rng.uniform(0.0, 0.2, (n, n)) * (rng.random((n, n)) < 0.5)
    np.fill_diagonal(t0, 0.0)
    return Data(
        regions=[f"R{i}" for i in range(n)],
        X0=X0,
        p0=rng.uniform(50.0, 150.0, n),
        t0=t0,
        eps=rng.uniform(0.3, 2.0, n),
        eta=rng.uniform(0.2, 1.2, n),
        sigma=rng.uniform(1.5, 6.0, n),
    )


@dataclass
class Policy:
    """Instruments of one scenario, as plain arrays (what the measures mean, per DESIGN §4)."""

    t: np.ndarray
    floor: np.ndarray
    cap: np.ndarray
    strike: np.ndarray
    shock: np.ndarray
    shift: np.ndarray
    release: np.ndarray
    quota: tuple[np.ndarray, float] | None = None  # (mask, quantity)
    measures: list = field(default_factory=list)  # the same scenario for tp.solve


def no_policy(d: Data) -> Policy:
    n = len(d.regions)
    return Policy(
        t=d.t0.copy(),
        floor=np.zeros((n, n)),
        cap=np.full((n, n), np.inf),
        strike=np.zeros(n),
        shock=np.zeros(n),
        shift=np.zeros(n),
        release=np.zeros(n),
    )


class Model:
    """The β-form CES equilibrium of one market under one policy."""

    def __init__(self, d: Data, pol: Policy) -> None:
        self.d, self.pol = d, pol
        self.S0, self.D0 = d.X0.sum(axis=1), d.X0.sum(axis=0)
        self.q0 = d.p0[:, None] * (1.0 + d.t0)
        self.P0 = (self.q0 * d.X0).sum(axis=0) / self.D0
        self.beta = d.X0 / self.D0 * (self.q0 / self.P0) ** d.sigma
        self.prod = self.S0 > 0

    def at(self, z: np.ndarray, rho: float, rationed: np.ndarray) -> dict[str, np.ndarray]:
        d, pol = self.d, self.pol
        p = d.p0.copy()
        p[self.prod] = d.p0[self.prod] * np.exp(z)
        pre = p[:, None] * (1.0 + pol.t)
        if pol.quota is not None:
            pre = pre + rho * pol.quota[0]
        levy = np.where(pol.floor > 0, np.minimum(pol.cap, np.maximum(0.0, pol.floor - pre)), 0)
        q = pre + levy
        trade = self.beta > 0
        one_m = 1.0 - d.sigma
        P = np.where(trade, self.beta * q**one_m, 0.0).sum(axis=0) ** (1.0 / one_m)
        D = self.D0 * (P / self.P0) ** (-d.eta) * (1.0 + pol.shift)
        A = np.where(rationed, 0.0, D - pol.release)
        X = np.where(trade, self.beta * q ** (-d.sigma) * P**d.sigma * A, 0.0)
        S = self.S0 * (np.maximum(p, pol.strike) / d.p0) ** d.eps * (1.0 - pol.shock)
        return {"p": p, "q": q, "P": P, "D": D, "A": A, "X": X, "S": S}

    def solve(self, binding: bool, rationed: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Clearing (and the quota filled when ``binding``) by MINPACK from base prices."""
        np_ = int(self.prod.sum())

        def residual(u: np.ndarray) -> np.ndarray:
            rho = u[np_] if binding else 0.0
            e = self.at(u[:np_], rho, rationed)
            r = (e["S"] - e["X"].sum(axis=1))[self.prod] / self.S0[self.prod]
            if binding:
                mask, qty = self.pol.quota
                r = np.append(r, (e["X"][mask].sum() - qty) / qty)
            return r

        u0 = np.zeros(np_ + binding)
        sol = optimize.root(residual, u0, method="hybr", options={"xtol": 1e-14})
        if not sol.success and np.max(np.abs(residual(sol.x))) > 1e-12:
            return None
        return sol.x[:np_], float(sol.x[np_]) if binding else 0.0

    def equilibrium(self) -> dict[str, np.ndarray]:
        """Enumerate the regimes (quota slack or binding; releases sold in full or covering
        all demand) and return the one whose complementarity conditions hold."""
        n = len(self.d.regions)
        releasing = np.flatnonzero(self.pol.release > 0)
        found = []
        for binding in (False, True) if self.pol.quota is not None else (False,):
            for k in range(2 ** len(releasing)):
                rationed = np.zeros(n, dtype=bool)
                rationed[releasing] = [(k >> i) & 1 for i in range(len(releasing))]
                got = self.solve(binding, rationed)
                if got is None:
                    continue
                e = self.at(got[0], got[1], rationed)
                ok = got[1] >= 0.0  # rent ≥ 0
                if self.pol.quota is not None and not binding:
                    ok &= e["X"][self.pol.quota[0]].sum() <= self.pol.quota[1] * (1 + 1e-12)
                ok &= np.all(e["A"][~rationed] >= 0.0)  # sold in full: demand covers it
                ok &= np.all((e["D"] <= self.pol.release)[rationed])  # release covers demand
                if ok:
                    found.append(e)
        assert len(found) == 1, f"{len(found)} regimes satisfy the conditions"
        return found[0]


# -- the scenarios, both ways -----------------------------------------------------------------
def to_market(d: Data) -> tp.Market:
    r = d.regions
    flows = {
        r[o]: {r[k]: float(d.X0[o, k]) for k in range(len(r)) if d.X0[o, k] > 0}
        for o in range(len(r))
    }
    flows = {o: row for o, row in flows.items() if row}
    return tp.Market.from_dict(
        {
            "id": "indep",
            "commodity": "test good",
            "base_year": 2024,
            "regions": r,
            "region_info": abstract_regions(r),
            "base_price": {"default": 100.0, **{r[i]: float(d.p0[i]) for i in range(len(r))}},
            "elasticities": {
                kind: {"default": 1.0, **{r[i]: float(v[i]) for i in range(len(r))}}
                for kind, v in (("supply", d.eps), ("demand", d.eta), ("substitution", d.sigma))
            },
            "base_tariffs": {
                r[o]: {r[k]: float(d.t0[o, k]) for k in range(len(r)) if d.t0[o, k] > 0}
                for o in range(len(r))
                if (d.t0[o] > 0).any()
            },
            "flows": flows,
        },
        source="independent-solve-test",
    )


def scenarios(d: Data) -> dict[str, Policy]:
    """Each measure type in its regimes, as a Policy and as project measures."""
    r, n = d.regions, len(d.regions)
    base_q0 = d.p0[:, None] * (1.0 + d.t0)
    D0 = d.X0.sum(axis=0)
    out: dict[str, Policy] = {}

    pol = no_policy(d)
    pol.t[0, 1] = 0.35  # replaces the base rate on R0 → R1
    pol.measures = [Tariff(importers=[r[1]], exporters=[r[0]], rate=0.35)]
    out["tariff"] = pol

    # a floor in R1 and R2 on every foreign origin but R3 (exempt), above most landed prices
    covered = np.zeros((n, n), dtype=bool)
    covered[:, [1, 2]] = True
    covered[3, :] = False
    np.fill_diagonal(covered, False)
    level = float(np.median(base_q0[covered & (d.X0 > 0)])) * 1.12
    for name, cap in (("floor", None), ("floor_capped", 0.04 * level)):
        pol = no_policy(d)
        pol.floor[covered] = level
        pol.cap[covered] = np.inf if cap is None else cap
        pol.measures = [
            PriceFloor(importers=[r[1], r[2]], exempt=[r[3]], floor=level, levy_cap=cap)
        ]
        out[name] = pol

    mask = np.zeros((n, n), dtype=bool)
    mask[0, 1:3] = True  # R0's sales to R1 and R2, one joint quota
    for name, share in (("quota_slack", 1.5), ("quota_binding", 0.6)):
        pol = no_policy(d)
        qty = float(d.X0[mask].sum() * share)
        pol.quota = (mask, qty)
        pol.measures = [ImportQuota(importers=[r[1], r[2]], exporters=[r[0]], quantity=qty)]
        out[name] = pol

    pol = no_policy(d)
    pol.strike[2] = 1.25 * d.p0[2]  # one-sided, all output covered
    pol.shock[1] = 0.2
    pol.measures = [
        PriceGapSubsidy(producers=[r[2]], strike=float(pol.strike[2])),
        SupplyShock(region=r[1], fraction=0.2),
    ]
    out["subsidy"] = pol

    pol = no_policy(d)
    pol.release[1] = 0.3 * D0[1]
    pol.measures = [StockpileRelease(region=r[1], quantity=float(pol.release[1]))]
    out["release"] = pol

    pol = no_policy(d)
    pol.release[1], pol.shift[1] = 0.6 * D0[1], -0.7
    pol.measures = [
        StockpileRelease(region=r[1], quantity=float(pol.release[1])),
        DemandShift(region=r[1], fraction=-0.7),
    ]
    out["release_beyond_demand"] = pol
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tp_solve_agrees_with_an_independent_solve(seed):
    d = random_data(seed)
    pols = scenarios(d)
    mkt = to_market(d)
    ds = tp.solve([tp.Scenario(name=k, measures=p.measures) for k, p in pols.items()], mkt)
    ds = ds.isel(commodity=0)
    regimes = set()
    for name, pol in pols.items():
        m = Model(d, pol)
        e = m.equilibrium()
        sub = ds.sel(scenario=name)
        assert int(sub.converged) == 1, str(sub.solver_message.values)
        np.testing.assert_allclose(
            sub.producer_price.values[m.prod], e["p"][m.prod], rtol=RTOL, err_msg=name
        )
        cons = m.D0 > 0
        np.testing.assert_allclose(
            sub.consumer_price.values[cons], e["P"][cons], rtol=RTOL, err_msg=name
        )
        scale = d.X0.sum()
        np.testing.assert_allclose(
            sub.trade_flow.values, e["X"], rtol=RTOL, atol=RTOL * scale * 1e-3, err_msg=name
        )
        traded = m.beta > 0
        np.testing.assert_allclose(
            sub.landed_price.values[traded], e["q"][traded], rtol=RTOL, err_msg=name
        )
        np.testing.assert_allclose(sub.production.values, e["S"], rtol=RTOL, err_msg=name)
        # the regimes the cases are meant to reach
        if name == "quota_binding":
            regimes.add("quota binding" if e["X"][pol.quota[0]].sum() > 0 else "")
        if name == "release_beyond_demand" and e["A"][1] == 0.0:
            regimes.add("release covers demand")
        if name.startswith("floor") and (sub.levy.values > 0).any():
            regimes.add(name)
    assert {"quota binding", "release covers demand", "floor", "floor_capped"} <= regimes
