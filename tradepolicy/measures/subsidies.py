"""Fiscal support to producers: price-gap subsidies (contracts for difference) and offtakes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from itertools import chain as _chain
from typing import Any, ClassVar, Literal, overload

import numpy as np
from pydantic import Field, field_validator, model_validator

from tradepolicy.measures.base import (
    ApplyContext,
    BookContext,
    Measure,
    Region,
    editor,
    memo_get,
    region_set,
    register,
    rel,
)
from tradepolicy.measures.floors import magnitude_advice, magnitude_flags
from tradepolicy.measures.trade import _names

Shares = dict[Region, float]

#: two price-gap subsidies on one producer are refused: paying both top-ups would pay the
#: gap twice for the same output (and one strike cannot be chosen for the user)
SUBSIDY_RULE = (
    "a producer has one price-gap subsidy (allowed: one price_gap_subsidy per producer; "
    "to share its cost, give several payers in that measure's `payers`)"
)


@overload
def _check_shares(value: Shares, what: str) -> Shares: ...
@overload
def _check_shares(value: None, what: str) -> None: ...
def _check_shares(value: Shares | None, what: str) -> Shares | None:
    if value is None:
        return value
    if not value:
        raise ValueError(f"give at least one {what} region")
    if any(v < 0 for v in value.values()):
        raise ValueError(f"{what} shares must be >= 0")
    total = sum(value.values())
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"{what} shares must sum to 1 (they sum to {total:g})")
    return value


def _non_producers(market, field: str, regions: list[str], hint: str = "") -> list[tuple[str, str]]:
    """A problem for each of ``regions`` without base output."""
    out = market.flows.sum(axis=1)
    return [
        (field, f"{r} produces nothing in the base data{hint}")
        for r in regions
        if out[market.index(r)[0]] <= 0
    ]


def _base_output(market) -> np.ndarray:
    """Each region's base output (read-only, on the market's memo)."""

    def make() -> np.ndarray:
        out = market.flows.sum(axis=1)
        out.flags.writeable = False
        return out

    return memo_get(market, ("base_output",), make)


def _producing(market) -> frozenset[str]:
    """The regions with base output (:func:`_base_output` > 0), as a set (on the memo)."""
    out = _base_output(market)
    return memo_get(
        market,
        ("producing",),
        lambda: frozenset(r for r, i in market._positions.items() if out[i] > 0),
    )


def _splits(
    outputs: Any, volumes: np.ndarray, groups: Iterable[list[int]]
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """:meth:`Offtake.split` of groups of offtakes with as many sellers, a group at once:
    per group its positions ``sel``, the sellers' indices and the volume each delivers
    ``(len(sel), sellers)`` (volume · output / total, the operations of ``split``).
    ``outputs[i]``: :func:`_sellers_output` of offtake i; ``volumes[i]``: its volume."""
    for sel in groups:
        idx = np.stack([outputs[i][0] for i in sel])
        total = np.array([outputs[i][2] for i in sel], dtype=float)[:, None]
        yield sel, idx, volumes[sel][:, None] * np.stack([outputs[i][1] for i in sel]) / total


def _covered(volume: Any, region: str) -> float:
    """A price-gap subsidy's covered volume of ``region`` from its ``covered_volume``: none
    (inf), per region (0 for one not named) or one volume for each producer."""
    if volume is None:
        return np.inf
    if isinstance(volume, dict):
        return volume.get(region, 0.0)
    return float(volume)


def _sellers_output(market, sellers: list[str]) -> tuple[np.ndarray, np.ndarray, float]:
    """The sellers' indices, base output and its sum (on the market's memo)."""
    key = ("offtake_split", tuple(sellers))
    got = market.memo.get(key)
    if got is None:
        idx = market.index(sellers)
        out = market.flows.sum(axis=1)[idx]
        got = market.memo[key] = (idx, out, out.sum())
    return got


@register
class PriceGapSubsidy(Measure):
    """A per-unit top-up on covered producers' own market price (a contract for difference).

    Top-up per unit ``f(p) = max(0, strike − p) − θ·max(0, p − upper)``: ``one_sided`` pays the
    gap below the strike (θ = 0); ``two_sided`` also claws back everything above the strike
    (θ = 1, upper = strike), fixing the effective price at the strike; ``collar`` claws back
    ``upside_share`` of the price above ``upside_threshold``. With ``covered_volume`` below
    output the top-up is inframarginal: the marginal incentive is the market price. A
    claw-back (f < 0) with a covered volume is settled on that contract volume whatever the
    output, so it is inframarginal too.
    """

    editor_label: ClassVar[str] = "Price-gap subsidy"
    type: Literal["price_gap_subsidy"] = "price_gap_subsidy"
    producers: list[Region] = Field(
        min_length=1,
        description="producing regions covered",
        json_schema_extra=editor(
            label="Producers covered",
            help="Producers paid the gap between the strike and the market price.",
            default="club_producers",
        ),
    )
    strike: float = Field(
        gt=0.0,
        description="strike price (market price unit)",
        json_schema_extra=editor(
            label="Strike",
            unit="price",
            help="Producers are topped up to this price when the market price is below it.",
            default=rel("base_price", 2.0),
        ),
    )
    kind: Literal["one_sided", "two_sided", "collar"] = Field(
        "one_sided",
        description="payment schedule",
        json_schema_extra=editor(
            label="Kind",
            help="Whether producers also pay back when the market price is high.",
            choices={
                "one_sided": "One-sided (pays the gap below the strike)",
                "two_sided": "Two-sided (pays below, claws back above)",
                "collar": "Collar (claws back a share above a threshold)",
            },
        ),
    )
    upside_threshold: float | None = Field(
        None,
        gt=0.0,
        description="collar: price above which producers pay back",
        json_schema_extra=editor(
            label="Collar: claw-back above",
            unit="price",
            help="Above this price producers pay back a share of the price.",
            default=rel("base_price", 3.0),
            when={"kind": "collar"},
        ),
    )
    upside_share: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="collar: share of the price above the threshold",
        json_schema_extra=editor(
            label="Collar: share clawed back",
            unit="share",
            help="Share of the price above the threshold paid back.",
            default=30.0,
            when={"kind": "collar"},
        ),
    )
    covered_volume: float | dict[Region, float] | None = Field(
        None,
        description="volume per producer receiving the top-up (default: all output)",
        json_schema_extra=editor(
            label="Volume covered",
            unit="quantity",
            help="Output per producer that receives the top-up; leave empty for all output.",
        ),
    )
    payers: Shares | None = Field(
        None,
        description="who pays, {region: share} summing to 1 (default: own government)",
        json_schema_extra=editor(
            label="Paid by",
            help="Regions paying, split by their base consumption; leave empty for each "
            "producer's own government.",
        ),
    )

    region_fields = ("producers", "payers")
    caveat: ClassVar[str] = (
        "A price-gap subsidy tied to output raises output and lowers the market price, so its "
        "fiscal cost is endogenous: larger than the gap at today's price times today's output."
    )

    @field_validator("payers")
    @classmethod
    def _payers(cls, v: Shares | None) -> Shares | None:
        return _check_shares(v, "payer")

    @field_validator("covered_volume")
    @classmethod
    def _volume(cls, v):
        values = v.values() if isinstance(v, dict) else [] if v is None else [v]
        if any(x < 0 for x in values):
            raise ValueError("covered volumes must be >= 0")
        return v

    @model_validator(mode="after")
    def _collar(self) -> PriceGapSubsidy:
        if self.kind == "collar":
            if self.upside_threshold is None or self.upside_share is None:
                raise ValueError("a collar needs upside_threshold and upside_share")
            if self.upside_threshold < self.strike:
                raise ValueError("upside_threshold must be >= strike")
        elif self.upside_threshold is not None or self.upside_share is not None:
            raise ValueError("upside_threshold and upside_share apply to kind = 'collar' only")
        return self

    def check(self, market) -> list[tuple[str, str]]:
        problems = super().check(market)
        if isinstance(self.covered_volume, dict):
            for r in self.covered_volume:
                if r not in self.producers:
                    problems.append(
                        (f"covered_volume.{r}", f"{r} is not among producers {self.producers}")
                    )
        if not problems:
            problems = _non_producers(market, "producers", self.producers, " (use seed_shares)")
        return problems

    @classmethod
    def check_rows(cls, market, measures: list) -> list[list[tuple[str, str]]]:
        known = region_set(market)
        every = cls._all_regions_known(known, measures)  # (tested at once)
        producing = _producing(market)  # (every producer known and producing: one test)
        return [
            []
            if (every or cls._regions_known(known, m))
            and (
                not isinstance(m.covered_volume, dict)
                or all(r in m.producers for r in m.covered_volume)
            )
            and producing.issuperset(m.producers)
            else m.check(market)  # words the problems
            for m in measures
        ]

    def advice(self, market) -> list[tuple[str, str]]:
        return magnitude_advice(market, "strike", self.strike)

    @classmethod
    def advice_rows(cls, market, measures: list) -> list[list[tuple[str, str]]]:
        flags = magnitude_flags(market, [m.strike for m in measures])
        return [m.advice(market) if f else [] for m, f in zip(measures, flags, strict=True)]

    columns = (
        "producers",
        "payers",
        "kind",
        "strike",
        "upside_share",
        "upside_threshold",
        "covered_volume",
    )

    def _volume_of(self, region: str) -> float:
        return _covered(self.covered_volume, region)

    def apply(self, ctx: ApplyContext, b: int) -> None:
        bld = ctx.builder
        cells = np.zeros(bld.support_strike.shape[1], dtype=bool)
        cells[ctx.idx(self.producers)] = True
        ctx.claim(b, "price-gap top-up", cells, SUBSIDY_RULE)
        for r in self.producers:
            o = ctx.idx(r)[0]
            bld.support_strike[b, o] = self.strike
            bld.support_volume[b, o] = self._volume_of(r)
            if self.kind == "two_sided":
                bld.support_share[b, o], bld.support_upper[b, o] = 1.0, self.strike
            elif self.kind == "collar":
                bld.support_share[b, o] = self.upside_share
                bld.support_upper[b, o] = self.upside_threshold
            else:
                bld.support_share[b, o], bld.support_upper[b, o] = 0.0, np.inf

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        pos = ctx.market._positions
        N = ctx.builder.support_strike.shape[1]
        cells = np.zeros((len(rows), N), dtype=bool)
        col = partial(ctx.column, cls, measures)
        producers = col("producers")
        at_i = [i for i, prod in enumerate(producers) for _ in prod]
        at_o = [pos[r] for prod in producers for r in prod]
        cells[at_i, at_o] = True
        ok = ctx.claim_rows(rows, j, measures, "price-gap top-up", cells, SUBSIDY_RULE)
        r_: list[int] = []
        o_: list[int] = []
        vals: list[tuple[float, float, float, float]] = []
        for b, prod, kind, strike, up_share, up_at, volume, keep in zip(
            rows.tolist(),
            producers,
            col("kind"),
            col("strike"),
            col("upside_share"),
            col("upside_threshold"),
            col("covered_volume"),
            ok.tolist(),
            strict=True,
        ):
            if not keep:
                continue
            if kind == "two_sided":
                share, upper = 1.0, strike
            elif kind == "collar":
                share, upper = up_share, up_at
            else:
                share, upper = 0.0, np.inf
            for r in prod:
                r_.append(b)
                o_.append(pos[r])
                vals.append((strike, _covered(volume, r), share, upper))
        if not r_:
            return
        at = (np.array(r_, dtype=np.intp), np.array(o_, dtype=np.intp))
        v = np.array(vals, dtype=float)
        bld = ctx.builder
        bld.support_strike[at] = v[:, 0]
        bld.support_volume[at] = v[:, 1]
        bld.support_share[at] = v[:, 2]
        bld.support_upper[at] = v[:, 3]

    def book(self, ctx: BookContext, b: int) -> None:
        st = ctx.state
        for r in self.producers:
            o = ctx.market.index(r)[0]
            payment = st.support[b, o] * st.covered[b, o]
            payers = self.payers or {r: 1.0}
            for payer, share in payers.items():
                ctx.add("subsidy_cost", b, payer, -share * payment)

    @classmethod
    def book_rows(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> None:
        pos = ctx.market._positions
        rb, ro, rp, rs = [], [], [], []
        producers = ctx.column(cls, measures, "producers")
        payers = ctx.column(cls, measures, "payers")
        for b, prod, pay in zip(rows.tolist(), producers, payers, strict=True):
            for r in prod:
                for payer, share in (pay or {r: 1.0}).items():
                    rb.append(b)
                    ro.append(pos[r])
                    rp.append(pos[payer])
                    rs.append(share)
        b_, o_ = np.array(rb, dtype=np.intp), np.array(ro, dtype=np.intp)
        st = ctx.state
        payment = st.support[b_, o_] * st.covered[b_, o_]
        amount = -np.array(rs, dtype=float) * payment
        np.add.at(ctx.ledger["subsidy_cost"], (b_, np.array(rp, dtype=np.intp)), amount)

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        price = getattr(market, "describe_price", None) or (
            lambda v: f"{v:,.0f} {market.price_unit}"
        )
        qunit = f"{market.quantity_unit}/yr"
        kinds = {
            "one_sided": "a one-sided price-gap subsidy",
            "two_sided": "a two-sided contract for difference",
            "collar": "a price-gap subsidy with a collar",
        }
        text = (
            f"{kinds[self.kind].capitalize()} for producers in {names(self.producers)} "
            f"with a strike of {price(self.strike)}"
        )
        if self.kind == "collar":
            text += (
                f", producers paying back {100 * (self.upside_share or 0.0):.3g}% of the price "
                f"above {price(self.upside_threshold or 0.0)}"
            )
        if isinstance(self.covered_volume, dict):
            vols = [f"{names([r])} {v:,.0f} {qunit}" for r, v in self.covered_volume.items()]
            text += f"; covered volume: {_names(vols)}"
        elif self.covered_volume is not None:
            text += f"; covered volume {self.covered_volume:,.0f} {qunit}"
        if self.payers and len(self.payers) == 1:
            text += f"; paid by {names(list(self.payers))}"
        elif self.payers:
            parts = [f"{names([r])} ({v:.0%})" for r, v in self.payers.items()]
            text += f"; paid by {_names(parts)}"
        else:
            text += "; each producer's own government pays"
        return text


@register
class Offtake(Measure):
    """Public buyers take ``volume`` from ``sellers`` at a fixed ``price``.

    ``stockpile`` removes the volume from the market (extra demand for the sellers' varieties);
    ``resell`` puts it back at market prices, so it is a fiscal transfer only. Buyers bear
    ``(price − market price)·volume`` (``offtake_cost``); sellers receive the same amount
    above the market price (in their producer surplus). A stockpiled volume is also a
    stockpile purchase at market prices (``stockpile_cost``), as with ``stockpile_purchase``:
    the buyer's whole outlay is ``price·volume``, and the material is an asset worth the market
    price paid (``stock_value_change``), so the offtake's welfare cost is the premium. The
    volume is split across sellers in proportion to base output; at or below a seller's
    output it is inframarginal.
    """

    type: Literal["offtake"] = "offtake"
    caveat: ClassVar[str] = (
        "An offtake volume is inframarginal: the contract price is a transfer from the buyers "
        "to the sellers; only a stockpiled volume changes quantities, as extra demand."
    )
    editor_label: ClassVar[str] = "Offtake"
    buyers: Shares = Field(
        description="public buyers, {region: share} summing to 1",
        json_schema_extra=editor(
            label="Public buyers",
            help="Governments buying the volume, split by their base consumption.",
            default="club_consumers",
        ),
    )
    sellers: list[Region] = Field(
        min_length=1,
        description="producing regions selling",
        json_schema_extra=editor(
            label="Sellers",
            help="Producers selling the contracted volume.",
            default="club_producers",
        ),
    )
    volume: float = Field(
        gt=0.0,
        description="volume per year (market quantity unit)",
        json_schema_extra=editor(
            label="Volume",
            unit="quantity",
            help="Volume bought each year (default: half the sellers' base output).",
            default=rel("base_output", 0.5, of="sellers"),
        ),
    )
    price: float = Field(
        gt=0.0,
        description="offtake price (market price unit)",
        json_schema_extra=editor(
            label="Contract price",
            unit="price",
            help="Price the buyers pay the sellers for the contracted volume.",
            default=rel("base_price", 2.0),
        ),
    )
    disposition: Literal["stockpile", "resell"] = Field(
        "stockpile",
        description="stockpile (leaves the market) or resell at market prices",
        json_schema_extra=editor(
            label="Then",
            help="A stockpiled volume leaves the market; a resold one comes back at market prices.",
            choices={"stockpile": "Stockpiled (off the market)", "resell": "Resold on the market"},
        ),
    )

    region_fields = ("buyers", "sellers")

    @field_validator("buyers")
    @classmethod
    def _buyers(cls, v: Shares) -> Shares:
        return _check_shares(v, "buyer")

    def check(self, market) -> list[tuple[str, str]]:
        problems = super().check(market)
        if not problems:
            problems = _non_producers(market, "sellers", self.sellers)
        return problems

    @classmethod
    def check_rows(cls, market, measures: list) -> list[list[tuple[str, str]]]:
        known = region_set(market)
        every = cls._all_regions_known(known, measures)  # (tested at once)
        producing = _producing(market)
        return [
            []
            if (every or cls._regions_known(known, m)) and producing.issuperset(m.sellers)
            else m.check(market)  # words the problems
            for m in measures
        ]

    def advice(self, market) -> list[tuple[str, str]]:
        out = market.flows.sum(axis=1)[market.index(self.sellers)].sum()
        adv = magnitude_advice(market, "price", self.price)
        if self.volume > out:
            adv.append(
                (
                    "volume",
                    f"{self.volume:g} {market.quantity_unit}/yr exceeds the sellers' base "
                    f"output ({out:g}); the offtake then drives their supply",
                )
            )
        return adv

    @classmethod
    def advice_rows(cls, market, measures: list) -> list[list[tuple[str, str]]]:
        flags = magnitude_flags(market, [m.price for m in measures])
        # the sellers' base output as advice sums it (market.flows.sum(axis=1)[idx].sum())
        return [
            m.advice(market) if f or m.volume > _sellers_output(market, m.sellers)[2] else []
            for m, f in zip(measures, flags, strict=True)
        ]

    columns = ("sellers", "volume", "price", "buyers", "disposition")
    float_columns = ("volume", "price")

    def split(self, market) -> tuple[np.ndarray, np.ndarray]:
        """Seller indices and the volume each delivers (by base output)."""
        idx, out, total = _sellers_output(market, self.sellers)
        return idx.copy(), self.volume * out / total

    def apply(self, ctx: ApplyContext, b: int) -> None:
        if self.disposition == "stockpile":
            idx, vol = self.split(ctx.market)
            np.add.at(ctx.builder.variety_purchase[b], idx, vol)

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        # `split` of the stockpiled offtakes, those with as many sellers at once (volume ·
        # output / total per seller, the same operations); the rows are distinct, so only a
        # measure's own sellers may share a cell, added in their order as alone
        disposition = ctx.column(cls, measures, "disposition")
        sellers = ctx.column(cls, measures, "sellers")
        outputs = {
            i: _sellers_output(ctx.market, sellers[i])
            for i, d in enumerate(disposition)
            if d == "stockpile"
        }
        groups: dict[int, list[int]] = {}
        for i, (idx, _, _) in outputs.items():
            groups.setdefault(idx.size, []).append(i)
        volumes = ctx.column(cls, measures, "volume", floats=True)
        for sel, idx, vol in _splits(outputs, volumes, groups.values()):
            b = rows[sel]
            at = (np.repeat(b, idx.shape[1]), idx.ravel())
            np.add.at(ctx.builder.variety_purchase, at, vol.ravel())

    def book(self, ctx: BookContext, b: int) -> None:
        idx, vol = self.split(ctx.market)
        market_value = ctx.state.p[b, idx] * vol
        gap = self.price * vol - market_value  # per seller, above market
        ctx.add("producer_surplus_change", b, idx, gap)
        for buyer, share in self.buyers.items():
            ctx.add("offtake_cost", b, buyer, -share * gap.sum())
            if self.disposition == "stockpile":
                # the material itself is a stockpile purchase at market prices, booked like
                # `stockpile_purchase`: spending, and a stock worth the market price paid (a
                # resold volume returns that value to the buyer)
                ctx.add("stockpile_cost", b, buyer, -share * market_value.sum())
                ctx.add("stock_value_change", b, buyer, share * market_value.sum())
                d = ctx.market.index(buyer)[0]
                ctx.regional["public_purchases"][b, d] += share * self.volume
                ctx.regional["stock_change"][b, d] += share * self.volume

    @classmethod
    def book_rows(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> None:
        # every seller and buyer of every offtake read in one pass each (flat arrays); the
        # sellers split by number of sellers, so each row's sums add as many values as alone
        market = ctx.market
        pos = market._positions
        R = len(measures)
        sellers_of = ctx.column(cls, measures, "sellers")
        n_sell = np.fromiter(map(len, sellers_of), np.intp, R)
        flat = np.fromiter(
            map(pos.__getitem__, _chain.from_iterable(sellers_of)), np.intp, int(n_sell.sum())
        )
        start = np.cumsum(n_sell) - n_sell
        output = _base_output(market)
        p = ctx.state.p
        led = ctx.ledger
        volumes = ctx.column(cls, measures, "volume", floats=True)
        prices = ctx.column(cls, measures, "price", floats=True)
        gap_sum = np.zeros(R)
        mv_sum = np.zeros(R)
        alone = np.zeros(R, dtype=bool)
        for k in np.unique(n_sell).tolist():
            sel = np.flatnonzero(n_sell == k)
            idx = flat[start[sel][:, None] + np.arange(k)]
            if k > 1:
                srt = np.sort(idx, axis=1)
                twice = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
                if twice.any():  # a seller named twice: booked as alone
                    for i in sel[twice].tolist():
                        measures[i].book(ctx, int(rows[i]))
                    alone[sel[twice]] = True
                    sel, idx = sel[~twice], idx[~twice]
            # `split`: volume · output / total per seller (each row's output summed as alone)
            out = output[idx]
            vol = volumes[sel][:, None] * out / out.sum(axis=1)[:, None]
            b = rows[sel]
            market_value = p[b[:, None], idx] * vol
            gap = prices[sel][:, None] * vol - market_value  # per seller, above market
            led["producer_surplus_change"][b[:, None], idx] += gap
            gap_sum[sel], mv_sum[sel] = gap.sum(axis=1), market_value.sum(axis=1)
        # one entry per (measure, buyer): the rows are distinct and so are a measure's
        # buyers, so each ledger cell gets one addition, as alone
        buyers = ctx.column(cls, measures, "buyers")
        n_buy = np.fromiter(map(len, buyers), np.intp, R)
        n = int(n_buy.sum())
        d = np.fromiter(map(pos.__getitem__, _chain.from_iterable(buyers)), np.intp, n)
        share = np.fromiter(_chain.from_iterable(map(dict.values, buyers)), float, n)
        t = np.repeat(np.arange(R), n_buy)
        if alone.any():
            keep = ~alone[t]
            t, d, share = t[keep], d[keep], share[keep]
        at = (rows[t], d)
        led["offtake_cost"][at] += -share * gap_sum[t]
        disposition = ctx.column(cls, measures, "disposition")
        s_ = np.fromiter(map("stockpile".__eq__, disposition), bool, R)[t]
        if s_.any():
            # the material itself is a stockpile purchase at market prices (as `book`)
            at_s, share_s, t_s = (at[0][s_], at[1][s_]), share[s_], t[s_]
            volume_s = volumes[t_s]
            led["stockpile_cost"][at_s] += -share_s * mv_sum[t_s]
            led["stock_value_change"][at_s] += share_s * mv_sum[t_s]
            ctx.regional["public_purchases"][at_s] += share_s * volume_s
            ctx.regional["stock_change"][at_s] += share_s * volume_s

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", _names)
        price = getattr(market, "describe_price", None) or (
            lambda v: f"{v:,.0f} {market.price_unit}"
        )
        where = (
            "and stockpiled" if self.disposition == "stockpile" else "and resold at market prices"
        )
        if len(self.buyers) == 1:
            buyers = names(list(self.buyers))
        else:
            buyers = _names([f"{names([r])} ({v:.0%})" for r, v in self.buyers.items()])
        return (
            f"A public offtake of {self.volume:,.0f} {market.quantity_unit}/yr from "
            f"{names(self.sellers)} at {price(self.price)}, bought by {buyers} {where}"
        )
