"""Helpers for testing tradepolicy and code built on it.

:func:`random_market` and :class:`ScenarioDrawer` draw synthetic markets and scenarios that
use every measure type with random parameters (both binding and slack regimes occur); the
kernel-versus-reference tests and the benchmarks share them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tradepolicy.market import Market
from tradepolicy.measures import (
    DemandShift,
    DiversificationCap,
    ExportQuota,
    ExportTax,
    ImportQuota,
    Measure,
    Offtake,
    PriceFloor,
    PriceGapSubsidy,
    StockpilePurchase,
    StockpileRelease,
    SupplyShock,
    Tariff,
    TariffRateQuota,
)

__all__ = ["EVERY_TYPE", "ScenarioDrawer", "every_measure_scenarios", "random_market"]

#: measure types every scenario uses (all registered in tradepolicy.measures at the time of
#: writing; a type registered later and missing here is reported in the log)
EVERY_TYPE = (
    "tariff",
    "export_tax",
    "supply_shock",
    "demand_shift",
    "price_floor",
    "price_gap_subsidy",
    "import_quota",
    "tariff_rate_quota",
    "export_quota",
    "offtake",
    "stockpile_release",
    "stockpile_purchase",
    "diversification_cap",
)


# -- market --------------------------------------------------------------------------------
def random_market(rng: np.random.Generator, n: int = 12, relative_se: float = 0.0) -> Market:
    """A synthetic n-region market built through the market schema.

    A dense-ish positive flow matrix with a large diagonal, base prices 0.5–2, supply
    0.3–2 and demand 0.2–1.5 elasticities, some base tariffs; substitution elasticities
    1.5–8 except the last two importers: Cobb-Douglas (σ = 1) and σ = 0.8 (every variety
    essential, so no ban targets them). ``relative_se > 0`` records standard errors of every
    elasticity (that share of its value) for Monte Carlo draws.
    """
    regions = [f"R{i:02d}" for i in range(n)]
    off = rng.uniform(0.5, 6.0, (n, n)) * (rng.random((n, n)) < 0.8)  # ~80 % of pairs trade
    X0 = off + np.diag(rng.uniform(30.0, 120.0, n))  # home sales dominate
    t0 = np.where(rng.random((n, n)) < 0.25, rng.uniform(0.0, 0.15, (n, n)), 0.0)
    np.fill_diagonal(t0, 0.0)
    sigma = rng.uniform(1.5, 8.0, n)
    sigma[-2:] = (1.0, 0.8)  # a Cobb-Douglas importer and one where varieties are essential

    def regional(values: np.ndarray) -> dict[str, float]:
        return {r: float(v) for r, v in zip(regions, values, strict=True)}

    def matrix(values: np.ndarray) -> dict[str, dict[str, float]]:
        return {
            e: {i: float(values[a, b]) for b, i in enumerate(regions) if values[a, b] > 0}
            for a, e in enumerate(regions)
            if (values[a] > 0).any()
        }

    p0 = rng.uniform(0.5, 2.0, n)
    elasticities = {
        "supply": rng.uniform(0.3, 2.0, n),
        "demand": rng.uniform(0.2, 1.5, n),
        "substitution": sigma,
    }
    uncertainty = {}
    if relative_se > 0:
        uncertainty["elasticity_se"] = {
            k: regional(relative_se * v) for k, v in elasticities.items()
        }
    return Market.from_dict(
        {
            "id": "synthetic",
            "commodity": "synthetic good",
            "description": f"Synthetic {n}-region market (tradepolicy.testing).",
            "base_year": 2024,
            "regions": regions,
            "base_price": regional(p0),
            "elasticities": {k: regional(v) for k, v in elasticities.items()},
            "base_tariffs": matrix(t0),
            "flows": matrix(X0),
            # abstract regions the shipped regions table does not know
            "region_info": {r: {"name": f"Region {r}"} for r in regions},
            **uncertainty,
        },
        source="tradepolicy.testing",
    )


# -- scenarios -----------------------------------------------------------------------------
class ScenarioDrawer:
    """Draws one scenario's measures: every measure type, random parameters."""

    def __init__(self, rng: np.random.Generator, market: Market) -> None:
        self.rng = rng
        self.market = market
        self.cal = market.calibration
        self.regions = list(market.regions)
        self.n = len(self.regions)

    def some(self, k_lo: int, k_hi: int, pool: list[int] | None = None) -> list[int]:
        """k_lo..k_hi distinct region indices from ``pool`` (default all), sorted."""
        pool = list(range(self.n)) if pool is None else pool
        k = min(len(pool), int(self.rng.integers(k_lo, k_hi + 1)))
        return sorted(int(i) for i in self.rng.choice(pool, size=k, replace=False))

    def names(self, idx: list[int]) -> list[str]:
        return [self.regions[i] for i in idx]

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def draw(self) -> list[Measure]:
        rng, cal, n = self.rng, self.cal, self.n
        X0, q0, p0 = cal.X0, cal.q0, cal.p0
        out: list[Measure] = []

        # one tariff per pair (a second one is refused): tariffs on distinct importers, none on
        # the tariff-rate quota's importer
        d_iq, d_trq = self.some(2, 2)
        for d in self.some(1, 3, [i for i in range(n) if i != d_trq]):
            o = self.some(1, 4, [i for i in range(n) if i != d])
            out.append(
                Tariff(importers=[self.regions[d]], exporters=self.names(o), rate=self.u(0, 0.5))
            )
        exporter = self.some(1, 1)[0]
        out.append(
            ExportTax(
                exporter=self.regions[exporter],
                destinations=self.names(self.some(1, 4, [d for d in range(n) if d != exporter])),
                rate=self.u(0.0, 0.3),
            )
        )
        out.append(SupplyShock(region=self.names(self.some(1, 2)), fraction=self.u(0.0, 0.5)))
        out.append(DemandShift(region=self.names(self.some(1, 2)), fraction=self.u(-0.2, 0.3)))

        # price floor: a club of importers exempting its members (and sometimes others)
        club = self.some(2, 4)
        exempt = sorted(set(club) | set(self.some(0, 2)))
        covered = np.zeros((n, n), dtype=bool)
        covered[np.ix_([i for i in range(n) if i not in exempt], club)] = True
        covered &= X0 > 0
        ref = float(q0[covered].mean()) if covered.any() else float(p0.mean())
        floor = self.u(0.8, 1.4) * ref
        out.append(
            PriceFloor(
                importers=self.names(club),
                exempt=self.names(exempt),
                floor=floor,
                levy_cap=self.u(0.05, 0.4) * floor if self.chance(0.4) else None,
                collector="exporters" if self.chance(0.3) else "importer_government",
            )
        )

        # price-gap subsidy
        prod = self.some(1, 3)
        strike = self.u(0.8, 1.3) * float(p0[prod].mean())
        kind = str(rng.choice(["one_sided", "two_sided", "collar"]))
        collar: dict[str, Any] = {}
        if kind == "collar":
            collar = {
                "upside_threshold": strike * self.u(1.0, 1.3),
                "upside_share": self.u(0.2, 1.0),
            }
        volume = None
        if self.chance(0.4):
            volume = {self.regions[o]: self.u(0.3, 1.3) * float(cal.S0[o]) for o in prod}
        out.append(
            PriceGapSubsidy(
                producers=self.names(prod),
                strike=strike,
                kind=kind,
                covered_volume=volume,
                **collar,
            )
        )

        # import quota and tariff-rate quota (different importers, drawn above)
        for d, cls in ((d_iq, ImportQuota), (d_trq, TariffRateQuota)):
            foreign = [i for i in range(n) if i != d and X0[i, d] > 0]
            origins = None if self.chance(0.4) else self.some(2, 6, foreign)
            rows = foreign if origins is None else origins
            base = float(X0[rows, d].sum())
            kw: dict[str, Any] = {
                "importers": [self.regions[d]],
                "exporters": None if origins is None else self.names(origins),
                "quantity": self.u(0.6, 1.3) * base,
                "rent_to": str(rng.choice(["importer_government", "importers", "exporters"])),
            }
            if cls is TariffRateQuota:
                kw["in_rate"] = self.u(0.0, 0.1)
                kw["out_rate"] = kw["in_rate"] + self.u(0.05, 0.6)
            out.append(cls(**kw))

        # export quota, sometimes an export ban by another exporter
        o_q, o_ban = self.some(2, 2)
        buyers = [d for d in range(n) if d != o_q and X0[o_q, d] > 0]
        dest = None if self.chance(0.4) else self.some(2, 6, buyers)
        base = float(X0[o_q, buyers if dest is None else dest].sum())
        out.append(
            ExportQuota(
                exporter=self.regions[o_q],
                destinations=None if dest is None else self.names(dest),
                quantity=self.u(0.5, 1.3) * base,
                rent_to=str(rng.choice(["exporter_government", "exporters", "importers"])),
            )
        )
        banned: list[int] = []  # destinations of the export ban
        if self.chance(0.3):
            sigma = np.broadcast_to(cal.sigma, (n,))
            ok = [d for d in range(n) if d != o_ban and X0[o_ban, d] > 0 and sigma[d] > 1.0]
            if ok:
                banned = self.some(1, 3, ok)
                out.append(
                    ExportQuota(
                        exporter=self.regions[o_ban],
                        destinations=self.names(banned),
                        quantity=0.0,
                    )
                )

        # offtake and stockpiles
        buy = self.some(1, 2)
        shares = rng.dirichlet(np.ones(len(buy)))
        shares[-1] = 1.0 - shares[:-1].sum()
        sellers = self.some(1, 2)
        out.append(
            Offtake(
                buyers={self.regions[b]: float(s) for b, s in zip(buy, shares, strict=True)},
                sellers=self.names(sellers),
                volume=self.u(0.05, 0.3) * float(cal.S0[sellers].sum()),
                price=self.u(0.8, 1.3) * float(p0[sellers].mean()),
                disposition=str(rng.choice(["stockpile", "resell"])),
            )
        )
        r_rel, r_buy = self.some(2, 2)
        out.append(
            StockpileRelease(
                region=self.regions[r_rel], quantity=self.u(0.02, 0.25) * cal.D0[r_rel]
            )
        )
        out.append(
            StockpilePurchase(
                region=self.regions[r_buy], quantity=self.u(0.02, 0.25) * cal.D0[r_buy]
            )
        )

        # diversification cap on one importer
        d = self.some(1, 1)[0]
        basis = str(rng.choice(["consumption", "imports"]))
        inb = X0[:, d] > 0
        if d in banned:
            inb[o_ban] = False
        if basis == "imports":
            inb[d] = False
        foreign = [o for o in range(n) if o != d and inb[o]]
        origins = None if self.chance(0.5) else self.some(2, 5, foreign)
        capped = foreign if origins is None else origins
        share = X0[capped, d] / X0[inb, d].sum()
        max_share = self.u(0.6, 1.3) * float(share.max())
        if basis == "imports" and len(capped) == len(foreign):  # shares must reach 100 %
            max_share = max(max_share, 1.1 / len(capped))
        out.append(
            DiversificationCap(
                importers=[self.regions[d]],
                max_share=min(max_share, 0.95),
                basis=basis,
                exporters=None if origins is None else self.names(origins),
            )
        )
        return out


def every_measure_scenarios(
    rng: np.random.Generator, market: Market, n_scen: int
) -> list[list[Measure]]:
    """``n_scen`` scenarios, each using every measure type; every measure passes its check."""
    drawer = ScenarioDrawer(rng, market)
    out = [drawer.draw() for _ in range(n_scen)]
    for b, ms in enumerate(out):
        missing = set(EVERY_TYPE) - {m.type for m in ms}
        if missing:
            raise RuntimeError(f"scenario {b} lacks {sorted(missing)}")
        for m in ms:
            problems = m.check(market)
            if problems:
                raise RuntimeError(f"scenario {b}: invalid {m.type}: {problems}")
    return out
