"""Disruption risk and stockpile policy in pathway sets (docs/risk.md).

A pathway set may list random events (``[[risk]]``): any measure type with an annual
probability, a duration and a severity distribution. Events are drawn per Monte Carlo draw
from their own random stream (spawned from the run's seed, so adding risk does not change the
parameter draws), the same events in every option of a draw; draw 0, the central run, has
none. In an event year the event's measure, scaled by its severity, joins every option of the
draw and the whole row uses the short-run elasticities.

A ``stockpile_policy`` measure keeps a stock per holder that carries over years
(:class:`Stocks`): bought toward a target in build years, released by its rule, booked as
assets (docs/model.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from tradepolicy._validation import MAX_TEXT, problems_from_validation_error
from tradepolicy.errors import InputError
from tradepolicy.measures import MEASURES, Measure
from tradepolicy.measures.stocks import StockpilePolicy
from tradepolicy.scenario import is_chain, stage_of

__all__ = ["RiskEvent", "Severity", "Stocks", "draw_events", "parse_risk"]

#: the fields of a ``[[risk]]`` entry that are not the event measure's own
RISK_FIELDS = (
    "name",
    "label",
    "annual_probability",
    "duration_years",
    "first_year",
    "last_year",
    "severity",
    "source",
)
#: measure types whose intensity a severity scales (the field scaled)
SCALED = {
    "export_tax": "rate",
    "tariff": "rate",
    "export_quota": "quantity_share",
    "supply_shock": "fraction",
    "demand_shift": "fraction",
}
#: a name of an event: letters, digits, ``_ . -``
EventName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
]


class Severity(BaseModel):
    """How hard an event hits, s in [0, 1]: ``fixed`` {value}, ``uniform`` {low, high} or
    ``beta`` {a, b}."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    distribution: Literal["fixed", "uniform", "beta"] = "fixed"
    value: float | None = Field(None, ge=0.0, le=1.0)
    low: float | None = Field(None, ge=0.0, le=1.0)
    high: float | None = Field(None, ge=0.0, le=1.0)
    a: float | None = Field(None, gt=0.0)
    b: float | None = Field(None, gt=0.0)

    def model_post_init(self, _: Any) -> None:
        need = {"fixed": ("value",), "uniform": ("low", "high"), "beta": ("a", "b")}
        own = need[self.distribution]
        other = [k for k in ("value", "low", "high", "a", "b") if k not in own]
        given = [k for k in other if getattr(self, k) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} not read by a {self.distribution!r} severity (it takes "
                f"{', '.join(own)})"
            )
        if self.distribution == "fixed" and self.value is None:
            object.__setattr__(self, "value", 1.0)
        missing = [k for k in own if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a {self.distribution!r} severity needs {', '.join(missing)}")
        if self.distribution == "uniform" and self.high < self.low:  # type: ignore[operator]
            raise ValueError(f"uniform severity: high {self.high} is below low {self.low}")

    @property
    def is_one(self) -> bool:
        """Whether every event hits at full strength (fixed 1)."""
        return self.distribution == "fixed" and self.value == 1.0

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` severities (always ``n`` uniforms are used, whatever the distribution)."""
        u = rng.random(n)
        if self.distribution == "fixed":
            return np.full(n, float(self.value))  # type: ignore[arg-type]
        if self.distribution == "uniform":
            return float(self.low) + (float(self.high) - float(self.low)) * u  # type: ignore[arg-type]
        from scipy.stats import beta

        return beta.ppf(u, float(self.a), float(self.b))  # type: ignore[arg-type]


class _RiskEntry(BaseModel):
    """The event fields of a ``[[risk]]`` entry (the rest is the measure's)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: EventName
    label: Annotated[str, StringConstraints(max_length=200)] = ""
    annual_probability: float = Field(ge=0.0, le=1.0)
    duration_years: int = Field(1, ge=1, le=60)
    first_year: int | None = Field(None, ge=1900, le=2200)
    last_year: int | None = Field(None, ge=1900, le=2200)
    severity: Severity = Field(default_factory=Severity)
    source: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""


@dataclass(frozen=True)
class RiskEvent:
    """One random event of a pathway set: its measure and how it occurs."""

    name: str
    measure: Measure
    annual_probability: float
    duration_years: int = 1
    first_year: int | None = None
    last_year: int | None = None
    severity: Severity = field(default_factory=Severity)
    label: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The entry as written in a file."""
        from tradepolicy.measures.base import dump_measures

        d: dict[str, Any] = {"name": self.name}
        if self.label:
            d["label"] = self.label
        d.update(dump_measures([self.measure])[0])
        d["annual_probability"] = self.annual_probability
        d["duration_years"] = self.duration_years
        for k in ("first_year", "last_year"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        d["severity"] = self.severity.model_dump(exclude_none=True)
        if self.source:
            d["source"] = self.source
        return d


def parse_risk(
    entries: list[dict[str, Any]], path: str, market: Any, years: tuple[int, int]
) -> list[RiskEvent]:
    """The events of a pathway set's ``[[risk]]`` entries, validated (each measure by its own
    type's rules, on its stage); an :class:`~tradepolicy.errors.InputError` names every
    problem as ``risk[i].field``."""
    problems: list[tuple[str, str]] = []
    out: list[RiskEvent] = []
    seen: set[str] = set()
    for i, raw in enumerate(entries):
        at = f"risk[{i}]"
        if not isinstance(raw, dict):
            problems.append((at, "a table is required (`[[risk]]` with its fields)"))
            continue
        head = {k: v for k, v in raw.items() if k in RISK_FIELDS}
        body = {k: v for k, v in raw.items() if k not in RISK_FIELDS}
        try:
            entry = _RiskEntry.model_validate(head)
        except ValidationError as exc:
            problems += [(f"{at}.{f}", m) for f, m in problems_from_validation_error(exc)]
            continue
        if entry.name in seen:
            problems.append((f"{at}.name", f"duplicate event name {entry.name!r}"))
        seen.add(entry.name)
        kind = body.get("type")
        if kind not in MEASURES:
            problems.append(
                (
                    f"{at}.type",
                    f"unknown measure type {kind!r} (allowed: {', '.join(sorted(MEASURES))})",
                )
            )
            continue
        cls = MEASURES[kind]
        if getattr(cls, "pathway_only", False):
            problems.append((f"{at}.type", f"{kind!r} cannot be an event (it acts over years)"))
            continue
        for k in ("start_year", "end_year"):
            if k in body:
                problems.append(
                    (f"{at}.{k}", "an event's years are drawn; give first_year / last_year")
                )
        if any(k in body for k in ("start_year", "end_year")):
            continue
        try:
            measure = cls.model_validate(body)
        except ValidationError as exc:
            problems += [(f"{at}.{f}", m) for f, m in problems_from_validation_error(exc)]
            continue
        first, last = years
        lo = entry.first_year if entry.first_year is not None else first
        hi = entry.last_year if entry.last_year is not None else last
        if not (first <= lo <= hi <= last):
            problems.append(
                (
                    f"{at}.first_year",
                    f"the window {lo}-{hi} must lie within the pathway's years {first}-{last} "
                    "with first_year <= last_year",
                )
            )
        if not entry.severity.is_one and kind not in SCALED:
            problems.append(
                (
                    f"{at}.severity",
                    f"a {kind!r} event has no intensity to scale: leave severity out (fixed 1) "
                    f"or use one of {', '.join(sorted(SCALED))}",
                )
            )
        if (
            kind == "export_quota"
            and getattr(measure, "quantity", None) is not None
            and not entry.severity.is_one
        ):
            problems.append(
                (
                    f"{at}.quantity",
                    "a severity scales an export quota given as quantity_share (of base "
                    "exports); give quantity_share instead of quantity",
                )
            )
        problems += [(f"{at}.{f}", m) for f, m in _measure_problems(market, measure)]
        out.append(
            RiskEvent(
                name=entry.name,
                measure=measure,
                annual_probability=entry.annual_probability,
                duration_years=entry.duration_years,
                first_year=entry.first_year,
                last_year=entry.last_year,
                severity=entry.severity,
                label=entry.label,
                source=entry.source,
            )
        )
    if problems:
        raise InputError(path, problems)
    return out


def _measure_problems(market: Any, m: Measure) -> list[tuple[str, str]]:
    """The measure's stage and region problems on ``market`` (a market or chain)."""
    if is_chain(market):
        if m.stage is None and len(market.stages) > 1:
            allowed = ", ".join(repr(s) for s in market.stage_ids)
            return [("stage", f"required in chain {market.id!r} (allowed: {allowed})")]
        if m.stage is not None and m.stage not in market.stage_ids:
            allowed = ", ".join(repr(s) for s in market.stage_ids)
            return [("stage", f"{m.stage!r} is not a stage of {market.id!r} (allowed: {allowed})")]
    return m.check(stage_of(market, m))


def draw_events(
    events: list[RiskEvent], years: np.ndarray, draws: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(active, severity)``: whether each event is running, ``(D, Y, R)`` bool, and its
    severity ``(D, R)``, for draws 0..``draws`` (draw 0: no event).

    The stream is spawned from ``seed`` (the parameter draws' own stream is untouched). Each
    year of an event's window it starts with its annual probability unless it is already
    running; it then runs ``duration_years`` (possibly past the window, not past the last
    year). Each draw has one severity per event. The uniforms drawn have a fixed shape, so
    one event's draws do not depend on the others' parameters.
    """
    D, Y, R = draws + 1, len(years), len(events)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    u = rng.random((D, Y, R))
    active = np.zeros((D, Y, R), dtype=bool)
    severity = np.zeros((D, R))
    for r, ev in enumerate(events):
        severity[1:, r] = ev.severity.draw(draws, rng)
        lo = ev.first_year if ev.first_year is not None else int(years[0])
        hi = ev.last_year if ev.last_year is not None else int(years[-1])
        left = np.zeros(D, dtype=int)  # years the running event still lasts
        for y, year in enumerate(years):
            running = left > 0
            start = (~running) & (lo <= year <= hi) & (u[:, y, r] < ev.annual_probability)
            start[0] = False
            left = np.where(start, ev.duration_years, left)
            active[:, y, r] = left > 0
            left = np.maximum(left - 1, 0)
    return active, severity


def scaled(ev: RiskEvent, s: float) -> Measure:
    """The event's measure at severity ``s``: rates and fractions × s; an export quota's
    allowed share of base exports 1 − s·(1 − quantity_share)."""
    m = ev.measure
    if ev.severity.is_one or s == 1.0:
        return m
    name = SCALED[m.type]
    value = getattr(m, name)
    new = 1.0 - s * (1.0 - value) if name == "quantity_share" else value * s
    return m.model_copy(update={name: float(new)})


def hit_regions(m: Measure, regions: tuple[str, ...]) -> set[str]:
    """The regions an event's measure hits (where a coordinated stock is released): an
    export restriction's destinations, an import measure's importers, a demand shift's
    regions; every region for a supply shock or another measure."""
    kind = m.type
    if kind in ("export_quota", "export_tax"):
        dest = getattr(m, "destinations", None)
        exporter = getattr(m, "exporter", None)
        return set(dest) if dest is not None else {r for r in regions if r != exporter}
    if kind in ("tariff", "import_quota", "tariff_rate_quota", "price_floor"):
        return set(getattr(m, "importers", None) or regions)
    if kind == "demand_shift":
        reg = m.region  # type: ignore[attr-defined]
        return {reg} if isinstance(reg, str) else set(reg)
    return set(regions)


@dataclass
class Stocks:
    """The stockpile policies of a pathway set and their state in every row.

    Each policy belongs to one scenario (rows ``d × S + s`` of every draw ``d``); its holders'
    stock levels ``level`` ``(D, H)`` and the book value per unit ``book`` ``(D,)`` carry
    over years.
    """

    policies: list[tuple[int, StockpilePolicy]]  # (scenario index incl. baseline, policy)
    stage: list[int]  # stage index of each policy
    holders: list[np.ndarray]  # positions (in the chain's regions) of each policy's holders
    payers: list[tuple[np.ndarray, np.ndarray]]  # (positions, shares)
    use0: list[np.ndarray]  # base consumption of the holders at the stage
    D: int
    S: int
    level: list[np.ndarray] = field(default_factory=list)
    book: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.level = [np.zeros((self.D, len(h))) for h in self.holders]
        self.book = [np.zeros(self.D) for _ in self.holders]

    @classmethod
    def of(cls, pset: Any, chain: Any, draws: int) -> Stocks | None:
        """The stockpile policies of ``pset`` (None without any)."""
        found = [
            (i + 1, m)
            for i, sc in enumerate(pset.scenarios)
            for m in sc.measures
            if isinstance(m, StockpilePolicy)
        ]
        if not found:
            return None
        regions = list(chain.regions)
        ids = [m.id for m in chain.stages]
        stage, holders, payers, use0 = [], [], [], []
        for _, m in found:
            s = ids.index(m.stage) if m.stage is not None else 0
            market = chain.stages[s]
            stage.append(s)
            holders.append(np.array([regions.index(r) for r in m.regions], dtype=int))
            payers.append(
                (
                    np.array([regions.index(r) for r in m.payers], dtype=int),
                    np.array(list(m.payers.values()), dtype=float),
                )
            )
            use = market.flows.sum(axis=0)
            use0.append(np.array([float(use[market.index(r)[0]]) for r in m.regions]))
        return cls(found, stage, holders, payers, use0, draws + 1, len(pset.names) + 1)

    def rows(self, k: int) -> np.ndarray:
        """The rows of policy ``k`` (its scenario in every draw)."""
        return np.arange(self.D) * self.S + self.policies[k][0]

    def actions(
        self,
        k: int,
        year: int,
        demand: np.ndarray,
        events: list[tuple[np.ndarray, set[str]]],
        last_price: np.ndarray | None,
        regions: tuple[str, ...],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(buy, taken, delivered)`` ``(D, H)`` of policy ``k`` this year: purchases,
        stock taken from each holder and quantity released to each holder's market.

        ``demand``: the holders' demand index this year; ``events``: (active ``(D,)``, regions
        hit) of each event at the policy's stage; ``last_price``: last year's composite price
        of the holders ``(D, H)`` (None in the first year)."""
        _, m = self.policies[k]
        level = self.level[k]
        D, H = level.shape
        target = m.target_days / 365.0 * self.use0[k] * demand  # (H,)
        hit = np.zeros((D, H), dtype=bool)
        if m.release == "event":
            names = [regions[h] for h in self.holders[k]]
            for on, where in events:
                mask = np.array([r in where for r in names])
                hit |= on[:, None] & mask[None, :]
        elif last_price is not None:
            hit = last_price > float(m.trigger_price)  # type: ignore[arg-type]
        releasing: np.ndarray = np.asarray(hit.any(axis=1))
        cap = m.release_rate * target
        if m.coordinated:
            pool = level.sum(axis=1)
            want = np.where(hit, cap[None, :], 0.0)  # released where it hits
            out = np.minimum(want.sum(axis=1), pool)
            with np.errstate(invalid="ignore", divide="ignore"):
                delivered = np.where(
                    want.sum(axis=1, keepdims=True) > 0,
                    want / want.sum(axis=1, keepdims=True) * out[:, None],
                    0.0,
                )
                taken = np.where(pool[:, None] > 0, level / pool[:, None] * out[:, None], 0.0)
        else:
            delivered = np.where(hit, np.minimum(cap[None, :], level), 0.0)
            taken = delivered
        first, last = m.build_years
        buy = np.zeros((D, H))
        if first <= year <= last:
            room = np.maximum(target[None, :] - level, 0.0)
            buy = np.where(
                releasing[:, None], 0.0, np.minimum(m.build_rate * target[None, :], room)
            )
        return buy, taken, delivered

    def book_year(
        self,
        k: int,
        buy: np.ndarray,
        taken: np.ndarray,
        delivered: np.ndarray,
        price: np.ndarray,
        rows: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The year's flows of policy ``k`` for draws ``rows`` (all draws by default) at the
        holders' composite prices ``price``: cash ``(D, N)`` to payers (spending and holding
        cost < 0, release revenue > 0), the asset change (stock added at book value, book
        value of releases written off), the new level and book value; nothing is stored."""
        _, m = self.policies[k]
        sel = slice(None) if rows is None else rows
        level, book = self.level[k][sel], self.book[k][sel]
        kept = level - taken
        bought = buy.sum(axis=1)
        spent = (price * buy).sum(axis=1)
        if m.book_value is not None:
            new_book = np.full(len(level), float(m.book_value))
        else:  # moving average of the acquisition cost
            held = kept.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                new_book = np.where(
                    held + bought > 0, (book * held + spent) / (held + bought), book
                )
        revenue = (price * delivered).sum(axis=1)
        off = book * taken.sum(axis=1)
        end = kept + buy
        holding = (m.financing_rate * new_book + m.storage_cost) * end.sum(axis=1)
        added = (new_book * buy).sum(axis=1) if m.book_value is not None else spent
        cash = revenue - spent - holding
        asset = added - off
        pos, share = self.payers[k]
        return {
            "cash": cash[:, None] * share[None, :],
            "asset": asset[:, None] * share[None, :],
            "payers": pos,
            "level": end,
            "book": new_book,
            "spent": spent,
            "revenue": revenue,
            "holding": holding,
            "written_off": off,
        }
