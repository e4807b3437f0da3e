"""Support for investment in new capacity: capex grants, loan guarantees, public equity.

These measures act on pipeline projects in pathway sets (docs/investment.md), not on the
static equilibrium: they write no wedge (:meth:`Measure.apply` does nothing) and a static
scenario set refuses them. Each names who pays (``payers``) and selects projects by region,
project name and stage (the base ``stage`` field).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from tradepolicy.measures.base import ApplyContext, Measure, Region, register
from tradepolicy.measures.subsidies import Shares, _check_shares
from tradepolicy.measures.trade import _names


class ProjectMeasure(Measure):
    """A measure acting on pipeline projects (pathway sets only)."""

    pathway_only: ClassVar[bool] = True
    payers: Shares = Field(description="who pays, {region: share} summing to 1")
    regions: list[Region] | None = Field(
        None, min_length=1, description="regions of the projects covered (default: all)"
    )
    projects: list[str] | None = Field(
        None, min_length=1, description="names of the projects covered (default: all)"
    )

    region_fields = ("payers", "regions")

    @field_validator("payers")
    @classmethod
    def _payers(cls, v: Shares) -> Shares:
        return _check_shares(v, "payer")

    def applies_to(self, project: Mapping[str, Any]) -> bool:
        """Whether a pipeline project (a row with ``project``, ``region``, ``stage``) is
        covered by the region, project and stage selectors."""
        if self.regions is not None and project.get("region") not in self.regions:
            return False
        if self.projects is not None and project.get("project") not in self.projects:
            return False
        return self.stage is None or project.get("stage") == self.stage

    def apply(self, ctx: ApplyContext, b: int) -> None:
        """Nothing: the measure acts on projects, not on the static equilibrium."""

    @classmethod
    def apply_rows(cls, ctx: ApplyContext, rows: np.ndarray, measures: list, j: int) -> None:
        """Nothing (see :meth:`apply`)."""

    def _scope(self, market: Any) -> str:
        names = getattr(market, "describe_regions", _names)
        parts = []
        if self.projects is not None:
            parts.append(_names(list(self.projects)))
        else:
            parts.append("projects")
        if self.regions is not None:
            parts.append(f"in {names(list(self.regions))}")
        if self.stage is not None:
            parts.append(f"at the {self.stage} stage")
        return " ".join(parts)

    def _paid_by(self, market: Any) -> str:
        names = getattr(market, "describe_regions", _names)
        if len(self.payers) == 1:
            return f"paid by {names(list(self.payers))}"
        return "paid by " + _names([f"{names([r])} ({v:.0%})" for r, v in self.payers.items()])


@register
class CapexGrant(ProjectMeasure):
    """A grant paying a share of each covered project's capex, or a fixed amount per project.

    The grant lowers the capex the investor finances; its cost is booked to ``payers`` when
    a project is built. ``max_capacity`` ends the grants once that much capacity has been
    granted.
    """

    type: Literal["capex_grant"] = "capex_grant"
    share: float | None = Field(None, gt=0.0, le=1.0, description="share of capex granted")
    amount: float | None = Field(
        None, gt=0.0, description="grant per project (currency of the market's prices)"
    )
    max_capacity: float | None = Field(
        None, gt=0.0, description="capacity granted before the grants stop (t/yr)"
    )
    caveat: ClassVar[str] = (
        "A capex grant acts only through investment decisions in a pathway; its cost is "
        "counted for the projects it gets built, and also for projects that would have been "
        "built anyway."
    )

    @model_validator(mode="after")
    def _one_of(self) -> CapexGrant:
        if (self.share is None) == (self.amount is None):
            raise ValueError("give exactly one of share (of capex) or amount (per project)")
        return self

    def describe(self, market: Any) -> str:
        if self.share is not None:
            what = f"{100 * self.share:.3g}% of the capex"
        else:
            currency = str(market.price_unit).split("/")[0]
            what = f"{self.amount:,.0f} {currency} per project"
        text = f"A capex grant of {what} of {self._scope(market)}"
        if self.max_capacity is not None:
            text += f", up to {self.max_capacity:,.0f} {market.quantity_unit}/yr of capacity"
        return f"{text}; {self._paid_by(market)}"


@register
class LoanGuarantee(ProjectMeasure):
    """A public guarantee of a share of each covered project's debt.

    The guaranteed debt is financed at the risk-free rate plus ``fee`` instead of the
    project's private rate; the expected loss on it is a budget cost of ``payers``, the
    guaranteed debt their contingent liability and the fees their income.
    """

    type: Literal["loan_guarantee"] = "loan_guarantee"
    coverage: float = Field(gt=0.0, le=1.0, description="share of the debt guaranteed")
    fee: float = Field(0.0, ge=0.0, lt=1.0, description="annual fee, share of guaranteed debt")
    caveat: ClassVar[str] = (
        "A loan guarantee costs the budget only its expected loss, but the guaranteed debt "
        "is a contingent liability of the guarantor for the life of the loan."
    )

    def describe(self, market: Any) -> str:
        return (
            f"A loan guarantee of {100 * self.coverage:.3g}% of the debt of "
            f"{self._scope(market)} for an annual fee of {100 * self.fee:.3g}%; "
            f"{self._paid_by(market)}"
        )


@register
class PublicEquity(ProjectMeasure):
    """Public investors take ``share`` of the equity of each covered project, asking the
    public discount rate instead of the private one."""

    type: Literal["public_equity"] = "public_equity"
    share: float = Field(gt=0.0, le=1.0, description="public share of the equity")
    caveat: ClassVar[str] = (
        "Public equity is an outlay that earns returns: its net cost depends on the "
        "project's cash flows, and it carries the project's price risk."
    )

    def describe(self, market: Any) -> str:
        return (
            f"Public equity of {100 * self.share:.3g}% in {self._scope(market)}; "
            f"{self._paid_by(market)}"
        )
