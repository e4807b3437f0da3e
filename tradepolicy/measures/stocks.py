"""Public stockpiles: releases and purchases of a region's composite (its consumption mix).

Stocks are assets (docs/model.md). A purchase books its spending (``stockpile_cost < 0``) and adds
a stock worth its book value (``stock_value_change > 0``); a release books its sale revenue at
the composite price (``stockpile_cost > 0``) and writes the book value off
(``stock_value_change < 0``). Welfare therefore counts only the trading gain
``(P − book)·Q`` plus the market effects: a release is never a free lunch.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from tradepolicy.measures.base import (
    ApplyContext,
    BookContext,
    Measure,
    Region,
    _groups_for,
    editor,
    memo_get,
    region_set,
    register,
    rel,
)


class _Stock(Measure):
    region: Region = Field(
        description="region whose stockpile releases or buys",
        json_schema_extra=editor(
            label="Region",
            help="Region whose public stockpile sells or buys.",
            default="largest_club_importer",
        ),
    )
    quantity: float = Field(
        gt=0.0,
        description="per year, in units of the region's base consumption mix",
        json_schema_extra=editor(
            label="Quantity",
            unit="quantity",
            help="Yearly volume, in the region's base mix of origins (default: 60 days of "
            "its base consumption).",
            default=rel("base_use", 60 / 365, of="region"),
        ),
    )
    book_value: float | None = Field(
        None,
        gt=0.0,
        description="book value per unit of stock (market price unit); default: see the type",
        json_schema_extra=editor(
            label="Book value",
            unit="price",
            help="Value of a unit of stock in the accounts; leave empty for the base price.",
        ),
    )

    region_fields = ("region",)
    columns = ("region", "quantity", "book_value")
    float_columns = ("quantity",)
    sign: ClassVar[float] = 0.0  # +1 purchase (adds demand), -1 release (adds supply)
    caveat: ClassVar[str] = (
        "Stockpile quantities are in units of the region's base consumption mix, traded at "
        "its composite price. Stocks are assets at their book value: a purchase turns money "
        "into stock, a release turns stock into money, so welfare counts only the gain or "
        "loss against the book value plus the market effects."
    )

    def book_price(self, ctx: BookContext, b: int) -> float:
        """Book value per unit of the stock added or written off in scenario ``b``."""
        raise NotImplementedError

    def check(self, market) -> list[tuple[str, str]]:
        problems = super().check(market)
        if not problems:
            use = market.flows.sum(axis=0)[market.index(self.region)[0]]
            if use <= 0:
                problems.append(("region", f"{self.region} consumes nothing in the base data"))
            elif self.sign < 0 and self.quantity >= use:
                problems.append(
                    (
                        "quantity",
                        f"a release of {self.quantity:g} is not below {self.region}'s base use "
                        f"({use:g} {market.quantity_unit}/yr); stock sold abroad is not modelled",
                    )
                )
        return problems

    @classmethod
    def check_rows(cls, market, measures: list) -> list[list[tuple[str, str]]]:
        pos, known = market._positions, region_set(market)
        every = cls._all_regions_known(known, measures)  # (tested at once)
        use = memo_get(market, ("base_use",), lambda: market.flows.sum(axis=0))  # read only
        return [
            []
            if (every or cls._regions_known(known, m))
            and (u := use[pos[m.region]]) > 0
            and not (m.sign < 0 and m.quantity >= u)
            else m.check(market)  # words the problems
            for m in measures
        ]

    def apply(self, ctx: ApplyContext, b: int) -> None:
        ctx.builder.composite_purchase[b, ctx.idx(self.region)[0]] += self.sign * self.quantity

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        pos = ctx.market._positions
        d = np.array([pos[r] for r in ctx.column(cls, measures, "region")], dtype=np.intp)
        q = cls.sign * ctx.column(cls, measures, "quantity", floats=True)  # (sign: ±1)
        ctx.builder.composite_purchase[rows, d] += q

    def book(self, ctx: BookContext, b: int) -> None:
        d = ctx.market.index(self.region)[0]
        quantity = self.quantity * (sold_share(ctx, b, d) if self.sign < 0 else 1.0)
        value = ctx.state.P[b, d] * quantity
        # cash: spending on a purchase (< 0), sale revenue of a release (> 0)
        ctx.add("stockpile_cost", b, self.region, -self.sign * value)
        # the asset: stock added at its book value, or the book value of what was sold written
        # off (an unsold rest of a release stays in the stock)
        book = self.book_price(ctx, b) * quantity
        ctx.add("stock_value_change", b, self.region, self.sign * book)
        ctx.regional["public_purchases"][b, d] += self.sign * quantity
        ctx.regional["stock_change"][b, d] += self.sign * quantity

    @classmethod
    def book_rows(cls, ctx: BookContext, rows: np.ndarray, measures: list) -> None:
        pos = ctx.market._positions
        st = ctx.state
        d = np.array([pos[r] for r in ctx.column(cls, measures, "region")], dtype=np.intp)
        q = ctx.column(cls, measures, "quantity", floats=True)
        sign = cls.sign
        if sign < 0:  # releases: the share sold (all of it unless users buy less)
            planned = ctx.inst.composite_purchase[rows, d]
            realised = st.A[rows, d] - st.D[rows, d]
            sold = sold_shares(ctx, rows, d, planned, realised)
            q = q * sold
        P = st.P[rows, d]
        value = P * q
        if sign < 0:
            unit = ctx.column(cls, measures, "book_value")
            P0 = ctx.cal.P0
            book_price = np.array(
                [float(P0[o]) if u is None else u for u, o in zip(unit, d.tolist(), strict=True)]
            )
        else:
            own = ctx.column(cls, measures, "book_value")
            book_price = np.array(
                [float(p) if u is None else u for u, p in zip(own, P, strict=True)]
            )
        led = ctx.ledger
        led["stockpile_cost"][rows, d] += -sign * value
        led["stock_value_change"][rows, d] += sign * (book_price * q)
        ctx.regional["public_purchases"][rows, d] += sign * q
        ctx.regional["stock_change"][rows, d] += sign * q


def sold_share(ctx: BookContext, b: int, d: int) -> float:
    """The share of region ``d``'s stock releases actually sold in scenario ``b``.

    Users cannot buy more than they demand: a release beyond the region's demand (net of its
    own stock purchases) is not sold and stays in the stock (the model's market purchases
    ``A_d`` stop at zero). Every release of the region is scaled alike.
    """
    st = ctx.state
    planned = ctx.inst.composite_purchase[b, d]  # purchases − releases
    realised = st.A[b, d] - st.D[b, d]
    if realised <= planned:  # everything sold (equal up to round-off)
        return 1.0
    pos = ctx.market._positions
    released = sum(
        m.quantity
        for m in ctx.extra.get("measures", [[]] * (b + 1))[b]
        if isinstance(m, StockpileRelease) and pos[m.region] == d
    )
    if released <= 0:
        return 1.0
    return float(max(0.0, 1.0 - (realised - planned) / released))


def sold_shares(
    ctx: BookContext,
    rows: np.ndarray,
    d: np.ndarray,
    planned: np.ndarray,
    realised: np.ndarray,
) -> np.ndarray:
    """:func:`sold_share` of region ``d[i]`` in scenario ``rows[i]`` for each i at once
    (``planned`` and ``realised`` as it reads them there); bit for bit the same numbers."""
    sold = np.ones(len(rows))
    over = np.flatnonzero(~(realised <= planned))  # releases not all sold (or round-off)
    if not over.size:
        return sold
    released = _released(ctx)[rows[over], d[over]]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = 1.0 - (realised[over] - planned[over]) / released
    # max(0.0, share) as Python takes it (0.0 unless share > 0), 1 without releases
    sold[over] = np.where(released <= 0, 1.0, np.where(share > 0.0, share, 0.0))
    return sold


def _released(ctx: BookContext) -> np.ndarray:
    """(B,N) each scenario's stock releases by region, summed in the order of its measures
    as :func:`sold_share` sums them (kept on ``ctx.extra``)."""
    got = ctx.extra.get("_released")
    if got is None:
        lists = ctx.extra.get("measures", [])
        got = np.zeros((max(len(lists), ctx.state.p.shape[0]), ctx.state.p.shape[1]))
        pos = ctx.market._positions
        for _, cls, rows_l, ms in _groups_for(ctx.pair_index, lists):  # in the order of j
            if rows_l and issubclass(cls, StockpileRelease):
                at = np.array([pos[r] for r in ctx.column(cls, ms, "region")], dtype=np.intp)
                # one measure per row of a group: each cell gets its releases one at a time
                got[np.array(rows_l, dtype=np.intp), at] += ctx.column(
                    cls, ms, "quantity", floats=True
                )
        ctx.extra["_released"] = got
    return got


@register
class StockpileRelease(_Stock):
    """A region sells ``quantity`` from its stockpile into its own market at the composite price."""

    editor_label: ClassVar[str] = "Stockpile release"
    type: Literal["stockpile_release"] = "stockpile_release"
    sign = -1.0

    def book_price(self, ctx: BookContext, b: int) -> float:
        """``book_value``, by default the region's base composite price P0 (the stock was
        acquired at base)."""
        if self.book_value is not None:
            return self.book_value
        return float(ctx.cal.P0[ctx.market.index(self.region)[0]])

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", None) or ", ".join
        text = (
            f"{names([self.region])} releases {self.quantity:,.0f} {market.quantity_unit}/yr "
            "from its stockpile"
        )
        return text[:1].upper() + text[1:]


@register
class StockpilePurchase(_Stock):
    """A region buys ``quantity`` of its consumption mix for its stockpile."""

    editor_label: ClassVar[str] = "Stockpile purchase"
    type: Literal["stockpile_purchase"] = "stockpile_purchase"
    sign = 1.0

    def book_price(self, ctx: BookContext, b: int) -> float:
        """``book_value``, by default what the purchase paid (acquisition cost: the
        scenario's composite price)."""
        if self.book_value is not None:
            return self.book_value
        return float(ctx.state.P[b, ctx.market.index(self.region)[0]])

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", None) or ", ".join
        text = (
            f"{names([self.region])} buys {self.quantity:,.0f} {market.quantity_unit}/yr "
            "for its stockpile"
        )
        return text[:1].upper() + text[1:]


@register
class StockpilePolicy(Measure):
    """A public stockpile run over the years of a pathway set (docs/risk.md).

    The holders (``regions``) build a stock toward ``target_days`` of their consumption in
    ``build_years``, buying at most ``build_rate`` of the target a year, and release at most
    ``release_rate`` of the target a year during a risk event (``release = "event"``) or when
    last year's composite price exceeded ``trigger_price`` (``release = "price"``). The
    stock carries over years; the pathway's year loop writes the purchases and releases
    into the market (as public composite purchases) and books them as §5 does: spending
    becomes an asset at book value, a release earns its revenue and writes its book value
    off, and holding the stock costs ``financing_rate`` on its book value plus
    ``storage_cost`` per unit-year, all to ``payers``.
    """

    type: Literal["stockpile_policy"] = "stockpile_policy"
    pathway_only: ClassVar[bool] = True
    #: why a static set refuses it (its error message)
    pathway_reason: ClassVar[str] = "runs a stock over the years"
    regions: list[Region] = Field(min_length=1, description="regions holding the stock")
    payers: dict[Region, float] = Field(description="who pays, {region: share} summing to 1")
    target_days: float = Field(gt=0.0, le=365.0, description="days of the holders' consumption")
    build_years: list[int] = Field(
        min_length=2, max_length=2, description="[first, last] year the stock is built"
    )
    build_rate: float = Field(
        gt=0.0, le=1.0, description="share of the target bought per year at most"
    )
    release: Literal["event", "price"] = Field(
        "event", description="release during a risk event, or above a trigger price"
    )
    trigger_price: float | None = Field(
        None, gt=0.0, description="composite price above which the stock is released (price rule)"
    )
    release_rate: float = Field(
        gt=0.0, le=1.0, description="share of the target released per year at most"
    )
    coordinated: bool = Field(
        False,
        description="pooled stock released where the event hits (True) or each holder to "
        "itself (False)",
    )
    book_value: float | None = Field(
        None, gt=0.0, description="book value per unit (default: acquisition cost)"
    )
    financing_rate: float = Field(
        0.0, ge=0.0, lt=0.5, description="financing cost per year on the book value"
    )
    storage_cost: float = Field(
        0.0, ge=0.0, description="storage cost per unit and year (currency of the market's prices)"
    )

    region_fields = ("regions", "payers")
    caveat: ClassVar[str] = (
        "A stockpile is an asset: purchases turn money into stock at its book value and "
        "releases turn stock back into money, so the budget bears the holding cost (financing "
        "and storage) and any trading loss; the stock left in the last year is valued at its "
        "book value."
    )

    @model_validator(mode="after")
    def _rules(self) -> StockpilePolicy:
        from tradepolicy.measures.subsidies import _check_shares

        _check_shares(self.payers, "payer")
        first, last = self.build_years
        if last < first:
            raise ValueError(f"build_years: the last year {last} is before the first {first}")
        if self.release == "price" and self.trigger_price is None:
            raise ValueError(
                "release = 'price' needs trigger_price (composite price, market units)"
            )
        if self.release == "event" and self.trigger_price is not None:
            raise ValueError("trigger_price is read only with release = 'price'")
        if self.target_days * self.release_rate >= 365.0:
            raise ValueError(
                "target_days × release_rate must be below 365: a release of a year's "
                "consumption or more cannot be sold to the holders"
            )
        return self

    def apply(self, ctx: ApplyContext, b: int) -> None:
        """Nothing here: the pathway's year loop writes the year's purchases and releases."""

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        """Nothing (see :meth:`apply`)."""

    def describe(self, market) -> str:
        names = getattr(market, "describe_regions", None) or ", ".join
        rule = (
            "during a supply disruption"
            if self.release == "event"
            else f"when the price exceeds {self.trigger_price:,.0f} {market.price_unit}"
        )
        pooled = "a coordinated (pooled) " if self.coordinated else "a "
        text = (
            f"{names(list(self.regions))} build {pooled}stockpile of {self.target_days:g} days "
            f"of consumption in {self.build_years[0]}-{self.build_years[1]} and release it "
            f"{rule}"
        )
        return text[:1].upper() + text[1:]
