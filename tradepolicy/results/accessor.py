"""The ``ds.tp`` accessor: comparisons against the baseline and quick diagnostics."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any, overload

import numpy as np
import pandas as pd
import xarray as xr

from tradepolicy import regions as region_table
from tradepolicy.measures.base import FISCAL_ENTRIES, WELFARE_ENTRIES
from tradepolicy.results import indicators
from tradepolicy.results.builder import result_fields
from tradepolicy.units import ureg

#: a change in bloc dependence smaller than this (percentage points) is "no change": cost per
#: point is not computed (it would divide by about zero)
MIN_POINTS = 0.1
#: money is shown in millions of the currency per year in every view
MONEY_DISPLAY = "mega{currency}/year"

#: variables whose Monte Carlo range :meth:`TradePolicyAccessor.region_table` reports
RANGE_VARIABLES = ("producer_price", "consumer_price", "top_supplier_share", "welfare_change")
#: quantiles reported by :meth:`TradePolicyAccessor.quantiles`
QUANTILES = (0.05, 0.5, 0.95)
#: variables of a run with draws that describe the draws themselves (not in :meth:`point`)
DRAW_ONLY = ("draw_converged", "supply_elasticity", "demand_elasticity", "substitution_elasticity")


def _fiscal(ds: xr.Dataset) -> xr.DataArray:
    """Subsidies + offtakes + stockpile cash flows by payer (negative = cost).

    With whatever dims ``ds`` has (a ``draw`` dim included).
    """
    out = sum(ds[k] for k in FISCAL_ENTRIES)
    if not isinstance(out, xr.DataArray):  # FISCAL_ENTRIES is not empty
        raise TypeError("no fiscal entries to add up")
    out.attrs = {
        "units": ds["subsidy_cost"].attrs["units"],
        "long_name": "fiscal cost by payer (negative = cost)",
    }
    return out.rename("fiscal_cost")


#: the tag that tells a chain's stage market from the shipped market of the same material
CHAIN_TAG = re.compile(r"\s*\(chain stage\)\s*$")


def _stage_spec(spec: Any, stage: str, stages: list[str]) -> dict[str, Any]:
    """Return a chain's scenario spec for one stage.

    ``market`` = the stage, each scenario with only the measures that act on it.
    """
    spec = spec[0] if isinstance(spec, list) and spec else spec
    if not isinstance(spec, dict):
        return {"market": stage, "scenario": []}

    def on_stage(m: Any) -> bool:
        at = m.get("stage") if isinstance(m, dict) else None
        return at == stage or (at is None and len(stages) == 1)

    scenarios = [
        {**sc, "measure": [m for m in sc.get("measure", []) if on_stage(m)]}
        for sc in spec.get("scenario", [])
        if isinstance(sc, dict)
    ]
    return {**spec, "market": stage, "scenario": scenarios}


def _point(ds: xr.Dataset) -> xr.Dataset:
    """Return the central results: draw 0 of a run with draws, else ``ds`` itself."""
    if "draw" not in ds.dims:
        return ds
    return ds.drop_vars([v for v in DRAW_ONLY if v in ds]).isel(draw=0, drop=True)


@xr.register_dataset_accessor("tp")
class TradePolicyAccessor:
    """Convenience views of a tradepolicy results Dataset: ``ds.tp``.

    Registered on every :class:`xarray.Dataset` by ``import tradepolicy``; the views read the
    central run (draw 0) unless they say they read the draws.

    Parameters
    ----------
    ds : xarray.Dataset
        A results Dataset (:func:`~tradepolicy.solve`, :func:`~tradepolicy.solve_pathway`,
        :func:`~tradepolicy.open_results`).
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._full = ds
        self._ds = _point(ds)

    def point(self) -> xr.Dataset:
        """Return the central results (draw 0 when the run has Monte Carlo draws).

        What every view shows as *the* number; ranges come from :meth:`range` and
        :meth:`quantiles`.

        Returns
        -------
        xarray.Dataset
            The Dataset without the ``draw`` dimension (itself when there are no draws).

        Examples
        --------
        >>> import xarray as xr
        >>> import tradepolicy  # registers ds.tp
        >>> ds = xr.Dataset({"price": (("draw", "region"), [[10.0, 12.0], [11.0, 13.0]])})
        >>> ds.tp.point()["price"].values.tolist()
        [10.0, 12.0]
        """
        return self._ds

    @property
    def scenarios(self) -> list[str]:
        """The scenario names, in the order of the ``scenario`` dim."""
        return [str(s) for s in self._ds.scenario.values]

    @property
    def commodities(self) -> list[str]:
        """The markets along the market axis: commodities, or the stages of a chain."""
        return [str(c) for c in self._ds[self.market_dim].values]

    # -- pathways (docs/pathways.md) --------------------------------------------------------
    @property
    def is_pathway(self) -> bool:
        """Whether these are the results of a pathway set (a ``year`` dimension)."""
        from tradepolicy.pathway.views import is_pathway

        return is_pathway(self._full)

    def trajectory(
        self,
        var: str,
        *,
        scenario: str | list[str] | None = None,
        stage: str | None = None,
        region: str | list[str] | None = None,
    ) -> pd.DataFrame:
        """Return a pathway variable by year (rows) and scenario (columns), central run.

        See :func:`tradepolicy.pathway.views.trajectory`.

        Parameters
        ----------
        var : str
            A pathway result variable (e.g. ``dependence``).
        scenario : str or list of str, optional
            The scenarios to show (default: all).
        stage : str, optional
            For a chain, the stage (default: the target stage).
        region : str or list of str, optional
            One region, or a list of regions summed (quantities and money only); default:
            every region summed, for quantities and money.

        Raises
        ------
        ValueError
            A per-region variable that does not add up over regions, without one
            ``region``.

        Returns
        -------
        pandas.DataFrame
            Years (rows) × scenarios (columns), central run.
        """
        from tradepolicy.pathway.views import trajectory

        return trajectory(self._full, var, scenario=scenario, stage=stage, region=region)

    def pathway_options(self) -> pd.DataFrame:
        """Return the options table of a pathway over its horizon.

        Target-year dependence, the probability of meeting each target share, present values of
        budget cost, cost to buyers and welfare, cost per point removed; see
        :func:`tradepolicy.pathway.views.options_table`.

        Returns
        -------
        pandas.DataFrame
            One row per scenario.
        """
        from tradepolicy.pathway.views import options_table

        return options_table(self._full)

    def risk_table(self) -> pd.DataFrame:
        """Return the risk table of a pathway set with ``[[risk]]`` events.

        Expected disruption loss (PV) and its 5–95% range, loss reduction, PV stockpile and
        budget cost, benefit/cost per scenario; see :func:`tradepolicy.pathway.views.risk_table`.

        Returns
        -------
        pandas.DataFrame
            One row per scenario, money in the display unit.
        """
        from tradepolicy.pathway.views import risk_table

        return risk_table(self._full)

    # -- value chains (docs/chains.md) ------------------------------------------------------
    @property
    def is_chain(self) -> bool:
        """Whether these are the results of a value chain (stages along ``stage``)."""
        return "stage" in self._ds.dims

    @property
    def market_dim(self) -> str:
        """The market axis: ``stage`` for a chain, else ``commodity``."""
        return "stage" if self.is_chain else "commodity"

    @property
    def stages(self) -> list[str]:
        """The stage market ids of a chain, upstream first (empty for single markets)."""
        return [str(s) for s in self._ds.stage.values] if self.is_chain else []

    @property
    def target_stage(self) -> str | None:
        """The stage where the target is read (``target_stage``, default the last stage).

        ``None`` for single markets.
        """
        if not self.is_chain:
            return None
        stage = str(self._ds.attrs.get("target_stage") or "")
        return stage if stage in self.stages else self.stages[-1]

    def stage_order(self) -> list[str]:
        """Return the stages in the order views show them.

        The target stage first, then the others upstream first.

        Returns
        -------
        list of str
            The stage ids; empty for a single market.
        """
        target = self.target_stage
        return [target, *(s for s in self.stages if s != target)] if target else []

    def stage_name(self, stage: str) -> str:
        """Return a stage's commodity in words (``NdPr oxide``).

        Without the "(chain stage)" tag that tells a stage market apart from the shipped market
        of the same material.

        Parameters
        ----------
        stage : str
            A stage id.

        Returns
        -------
        str
            The stage's commodity in words.
        """
        name = str(self._ds.commodity_name.sel(stage=stage).values)
        return CHAIN_TAG.sub("", name) or stage

    def links(self) -> list[dict[str, Any]]:
        """Return the chain's links (input, output, coefficient and its range) from the attrs.

        Returns
        -------
        list of dict
            One dict per link (``input``, ``output``, ``coefficient`` and its range);
            empty for a single market.
        """
        if not self.is_chain:
            return []
        return list(json.loads(str(self._ds.attrs.get("chain_links") or "[]")))

    def downstream_stages(self) -> list[str]:
        """Stages made from another stage (the outputs of links), upstream first.

        Returns
        -------
        list of str
            The stage ids; empty for a single market.
        """
        outs = {str(k["output"]) for k in self.links()}
        return [s for s in self.stages if s in outs]

    def _require_chain(self) -> None:
        if not self.is_chain:
            raise KeyError("these results are of single markets, not of a value chain")

    def _chain_market(self) -> dict[str, Any]:
        markets = json.loads(str(self._ds.attrs.get("markets") or "{}"))
        chain = markets.get(str(self._ds.attrs.get("chain", "")))
        return chain if isinstance(chain, dict) else {}

    def stage(self, stage: str | None = None) -> xr.Dataset:
        """Return one stage of a chain as a single-market Dataset.

        ``commodity`` = the stage id, on the stage's own regions, draws included, so every
        single-market view applies.

        Its ``markets`` attribute holds the stage market and its ``scenario_spec`` the
        measures that act on this stage; ``target_stage`` and ``chain`` say where it comes
        from. ``stage`` defaults to the target stage.

        Parameters
        ----------
        stage : str, optional
            A stage id (default: the target stage).

        Returns
        -------
        xarray.Dataset
            The stage's results as a single-market Dataset.

        Raises
        ------
        KeyError
            The results are of single markets, or the chain has no stage ``stage``.
        """
        self._require_chain()
        stage = stage or self.target_stage
        if stage not in self.stages:
            raise KeyError(f"no stage {stage!r} (stages: {', '.join(self.stages)})")
        chain = self._chain_market()
        market = (chain.get("stage_markets") or {}).get(stage)
        regions = [str(r) for r in self._full.region.values]
        if isinstance(market, dict) and market.get("regions"):
            own = set(map(str, market["regions"]))
            regions = [r for r in regions if r in own]
        sub = self._full.sel(stage=[stage], region=regions, exporter=regions, importer=regions)
        sub = sub.rename(stage="commodity")
        attrs = dict(sub.attrs)
        if isinstance(market, dict):
            attrs["markets"] = json.dumps({stage: market}, sort_keys=True)
        attrs["scenario_spec"] = json.dumps(
            _stage_spec(json.loads(str(attrs.get("scenario_spec") or "{}")), stage, self.stages),
            sort_keys=True,
        )
        sub.attrs = attrs
        return sub

    def chain_total(self) -> xr.Dataset:
        """Return a chain's results as one market (``commodity`` = the chain id).

        Every welfare part summed over the stages (draws included), everything else (prices,
        quantities, dependence) at the target stage; ``converged`` is the worst stage's.

        Returns
        -------
        xarray.Dataset
            The chain's results as one market.
        """
        self._require_chain()
        full = self._full
        summed = [*WELFARE_ENTRIES, "welfare_change"]
        out = full.sel(stage=[self.target_stage])
        for v in summed:
            total = full[v].sum("stage", min_count=1).expand_dims(stage=out.stage)
            out[v] = total.transpose(*full[v].dims).assign_attrs(full[v].attrs)
        out["converged"] = (
            (
                full["converged"]
                .min("stage")
                .expand_dims(stage=out.stage)
                .astype(full.converged.dtype)
            )
            .transpose(*full["converged"].dims)
            .assign_attrs(full["converged"].attrs)
        )
        if "draw_converged" in full and "stage" in full["draw_converged"].dims:
            dc = full["draw_converged"]
            out["draw_converged"] = (
                dc.min("stage").expand_dims(stage=out.stage).transpose(*dc.dims).astype(dc.dtype)
            )
        out = out.rename(stage="commodity").assign_coords(
            commodity=[str(full.attrs.get("chain", "chain"))],
            commodity_name=("commodity", [" → ".join(map(self.stage_name, self.stages))]),
        )
        return out

    def dependence_by_stage(self) -> pd.DataFrame:
        """Bloc dependence per stage and scenario, the target stage first.

        Rows ``(stage, scenario)``.

        Columns: ``stage_name``, ``target_stage`` (where the target is read),
        ``dependence`` (the bloc's share of use from its largest outside supplier),
        ``largest_outside_supplier``, ``unattributed_share``, ``points_removed`` (against the
        baseline, > 0 when it falls), ``meets_target`` (yes/no against the target's share at
        that stage), ``bloc_import_share`` (aggregates included) and ``solved``.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``(stage, scenario)``.
        """
        self._require_chain()
        ds = self._ds
        target = self.target_stage
        frames = []
        for st in self.stage_order():
            sub = ds.sel(stage=st)
            dep = sub["bloc_dependency"]
            solved = sub["converged"] == 1
            frame = pd.DataFrame(
                {
                    "stage_name": self.stage_name(st),
                    "target_stage": st == target,
                    "dependence": dep.where(solved).to_series(),
                    "largest_outside_supplier": sub["bloc_top_supplier"].to_series(),
                    "unattributed_share": sub["bloc_aggregate_share"].where(solved).to_series(),
                    "points_removed": (100.0 * (dep.sel(scenario="baseline") - dep))
                    .where(solved)
                    .to_series(),
                    "meets_target": sub["meets_target"]
                    .where(solved, -1)
                    .to_series()
                    .map({1: "yes", 0: "no", -1: ""}),
                    "bloc_import_share": sub["bloc_import_share"].where(solved).to_series(),
                    "solved": solved.to_series(),
                }
            )
            frame.index = pd.MultiIndex.from_product(
                [[st], [str(s) for s in frame.index]], names=["stage", "scenario"]
            )
            frames.append(frame)
        table = pd.concat(frames)
        table.attrs.update(
            target_stage=target,
            target=self.target_share(),
            bloc=self.bloc(),
            units={
                "dependence": "1",
                "unattributed_share": "1",
                "bloc_import_share": "1",
                "points_removed": "percentage points",
            },
        )
        return table

    def competitiveness(self) -> pd.DataFrame:
        """Downstream competitiveness per stage made from another stage.

        Rows ``(stage, scenario)``, upstream first: the target bloc's members against makers
        outside the bloc.

        Columns: ``bloc_output`` (members' output) and ``bloc_output_pct`` (% change from the
        baseline); ``bloc_input_cost`` and ``bloc_value_added`` (output-weighted unit input
        cost and value-added price ``p̃ − c`` of members' makers, price units) with
        ``bloc_value_added_pct``; ``bloc_margin`` (value added as a share of the members'
        producer price); ``outside_value_added`` and ``outside_value_added_pct`` (the same for
        makers outside the bloc); ``bloc_import_share`` (share of the bloc's use from outside
        it) and ``solved``.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``(stage, scenario)``; empty when no stage is made from another.
        """
        self._require_chain()
        ds = self._ds
        members = self.bloc()
        frames = []
        for st in self.downstream_stages():
            sub = ds.sel(stage=st)
            solved = sub["converged"] == 1
            in_bloc = sub.region.isin(members)

            def weighted(var: str, where: xr.DataArray, sub: xr.Dataset = sub) -> xr.DataArray:
                w = sub["production"].where(where & (sub["production"] > 0))
                num = (w * sub[var]).sum("region", min_count=1)
                return num / w.sum("region", min_count=1)

            def pct(da: xr.DataArray) -> xr.DataArray:
                base = da.sel(scenario="baseline")
                return 100.0 * (da - base) / base.where(base != 0)

            va, cost = weighted("value_added_price", in_bloc), weighted("input_cost", in_bloc)
            price = weighted("effective_producer_price", in_bloc)
            out_va = weighted("value_added_price", ~in_bloc)
            output = sub["bloc_output"]
            frame = pd.DataFrame(
                {
                    "stage_name": self.stage_name(st),
                    "bloc_output": output.where(solved).to_series(),
                    "bloc_output_pct": pct(output).where(solved).to_series(),
                    "bloc_input_cost": cost.where(solved).to_series(),
                    "bloc_value_added": va.where(solved).to_series(),
                    "bloc_value_added_pct": pct(va).where(solved).to_series(),
                    "bloc_margin": (va / price.where(price != 0)).where(solved).to_series(),
                    "outside_value_added": out_va.where(solved).to_series(),
                    "outside_value_added_pct": pct(out_va).where(solved).to_series(),
                    "bloc_import_share": sub["bloc_import_share"].where(solved).to_series(),
                    "solved": solved.to_series(),
                }
            )
            frame.index = pd.MultiIndex.from_product(
                [[st], [str(s) for s in frame.index]], names=["stage", "scenario"]
            )
            frames.append(frame)
        cols = [
            "stage_name",
            "bloc_output",
            "bloc_output_pct",
            "bloc_input_cost",
            "bloc_value_added",
            "bloc_value_added_pct",
            "bloc_margin",
            "outside_value_added",
            "outside_value_added_pct",
            "bloc_import_share",
            "solved",
        ]
        empty = pd.DataFrame(
            columns=cols, index=pd.MultiIndex.from_arrays([[], []], names=["stage", "scenario"])
        )
        table = pd.concat(frames) if frames else empty
        price_unit = str(ds["value_added_price"].attrs.get("units", ""))
        table.attrs.update(
            bloc=members,
            units={
                "bloc_output": str(ds["bloc_output"].attrs.get("units", "")),
                "bloc_input_cost": price_unit,
                "bloc_value_added": price_unit,
                "outside_value_added": price_unit,
                "bloc_margin": "1",
                "bloc_import_share": "1",
            },
        )
        return table

    def welfare_by_stage(self, scenario: str) -> pd.DataFrame:
        """National welfare change by region (rows) and stage (columns) in one scenario.

        Stages upstream first, with the ``total`` over stages, money in the display unit; a
        ``World`` row sums the regions.

        Parameters
        ----------
        scenario : str
            A scenario name.

        Returns
        -------
        pandas.DataFrame
            Regions and ``World`` (rows) × stages and ``total`` (columns).
        """
        self._require_chain()
        wel = self._ds["welfare_change"].sel(scenario=scenario).transpose("region", "stage")
        table = pd.DataFrame(
            self.money(np.asarray(wel.values, dtype=float)),
            index=pd.Index([str(r) for r in wel.region.values], name="region"),
            columns=self.stages,
        )
        table["total"] = table.sum(axis=1, min_count=1)
        table.loc["World"] = table.sum(axis=0, min_count=1)
        table.attrs["units"] = self.money_unit()
        return table

    def change(self, var: str) -> xr.DataArray:
        """Absolute change of ``var`` against the baseline.

        Parameters
        ----------
        var : str
            A result variable (a name of the result field table).

        Returns
        -------
        xarray.DataArray
            ``var`` minus its baseline value, by scenario.
        """
        da = self._ds[var]
        out = da - da.sel(scenario="baseline")
        out.attrs = dict(da.attrs, long_name=f"change in {da.attrs.get('long_name', var)}")
        return out

    def pct_change(self, var: str) -> xr.DataArray:
        """Percentage change of ``var`` against the baseline.

        Parameters
        ----------
        var : str
            A result variable (a name of the result field table).

        Returns
        -------
        xarray.DataArray
            The change in percent of the baseline value (NaN where the baseline is 0).
        """
        da = self._ds[var]
        base = da.sel(scenario="baseline")
        out = 100.0 * (da - base) / base.where(base != 0)
        out.attrs = {"units": "percent", "long_name": f"% change in {da.attrs.get('long_name')}"}
        return out

    def world_welfare(self) -> xr.DataArray:
        """World total of each welfare part and of ``welfare_change`` (sum over regions).

        Returns
        -------
        xarray.DataArray
            The welfare parts and ``welfare_change`` summed over regions (dim ``component``).
        """
        parts = [*WELFARE_ENTRIES, "welfare_change"]
        return self._ds[parts].sum("region").to_dataarray("component")

    def failed(self) -> list[tuple[str, str, str]]:
        """(scenario, commodity, message) of every scenario that did not solve.

        Scenarios a stacked market does not define (``converged == -1``) are not failures.

        Returns
        -------
        list of (str, str, str)
            ``(scenario, commodity, message)``; empty when every scenario solved.
        """
        ds, dim = self._ds, self.market_dim
        out = []
        for c in ds[dim].values:
            for s in ds.scenario.values:
                if int(ds.converged.sel({"scenario": s, dim: c})) == 0:
                    msg = str(ds.solver_message.sel({"scenario": s, dim: c}).values)
                    out.append((str(s), str(c), msg))
        return out

    def failed_draw_share(self) -> tuple[float, tuple[str, str] | None, int]:
        """Return the largest share of Monte Carlo draws that did not solve in one scenario.

        (share, (scenario, commodity) where it is, draws); (0.0, None, 0) without draws.

        Scenarios a stacked market does not define are left out.

        Returns
        -------
        tuple
            ``(share, (scenario, commodity) where it is, draws)``; ``(0.0, None, 0)`` without draws.
        """
        if "draw_converged" not in self._full:
            return 0.0, None, 0
        ok = self._full["draw_converged"].sel(draw=slice(1, None))
        failed = (ok == 0).mean("draw").where(self._ds["converged"] != -1, 0.0)
        dim = self.market_dim
        flat = failed.stack(cell=("scenario", dim))
        i = int(np.argmax(flat.values))
        where = (str(flat.scenario.values[i]), str(flat[dim].values[i]))
        return float(flat.values[i]), where, int(ok.sizes["draw"])

    def region_table(self, scenario: str, commodity: str | None = None) -> pd.DataFrame:
        """Per-region comparison of ``scenario`` against the baseline for one market.

        For a chain: one stage, default the target stage, on its own regions.

        Parameters
        ----------
        scenario : str
            A scenario name.
        commodity : str, optional
            The market (default: the first); for a chain, the stage (default: the
            target stage).

        Returns
        -------
        pandas.DataFrame
            One row per region: prices, output and use changes, welfare parts, the top
            supplier's share before and after, and 5-95% ranges with draws.
        """
        if self.is_chain:
            return self.stage(commodity).tp.region_table(scenario)
        ds = self._ds.sel(commodity=commodity or self.commodities[0])
        cur, base = ds.sel(scenario=scenario), ds.sel(scenario="baseline")

        def pct(var: str) -> pd.Series:
            b = base[var].to_series()
            return 100.0 * (cur[var].to_series() - b) / b.where(b != 0)

        table = pd.DataFrame(
            {
                "producer_price": cur["producer_price"].to_series(),
                "producer_price_pct": pct("producer_price"),
                "consumer_price": cur["consumer_price"].to_series(),
                "consumer_price_pct": pct("consumer_price"),
                "production_pct": pct("production"),
                "consumption_pct": pct("consumption"),
                **{k: cur[k].to_series() for k in (*WELFARE_ENTRIES, "welfare_change")},
                "top_supplier": cur["top_supplier"].to_series(),
                "top_supplier_share_base": base["top_supplier_share"].to_series(),
                "top_supplier_share": cur["top_supplier_share"].to_series(),
            }
        )
        if self.has_draws:  # 5% and 95% quantiles over the Monte Carlo draws
            for var in RANGE_VARIABLES:
                q = self.quantiles(var).sel(commodity=commodity or self.commodities[0])
                q = q.sel(scenario=scenario)
                table[f"{var}_q05"] = q.sel(quantile=0.05).to_series()
                table[f"{var}_q95"] = q.sel(quantile=0.95).to_series()
        table.index.name = "region"
        return table

    # -- the results vocabulary -----------------------------------------------------------
    @staticmethod
    def field(name: str) -> dict[str, str]:
        """Return the field table entry of a result variable.

        Dims, units template, long and short label, group, colour, aggregation and description.

        Parameters
        ----------
        name : str
            A result variable.

        Returns
        -------
        dict of str to str
            The variable's row of the field table.

        Raises
        ------
        KeyError
            ``name`` is not in the field table.
        """
        return dict(result_fields()[name])

    @staticmethod
    def welfare_groups() -> dict[str, tuple[str, str, list[str]]]:
        """Welfare parts by the field table's group: ``{group: (label, colour, variables)}``.

        A group of one variable takes its short label (``Consumers``); others the group's
        name. Every view stacks welfare by these groups.

        Returns
        -------
        dict
            ``{group: (label, colour, variables)}``, in the field table's order.
        """
        fields = result_fields()
        groups: dict[str, list[str]] = {}
        for v in WELFARE_ENTRIES:
            groups.setdefault(fields[v]["group"], []).append(v)
        return {
            g: (
                fields[vs[0]]["short_label"] if len(vs) == 1 else g.capitalize(),
                fields[vs[0]]["colour"],
                vs,
            )
            for g, vs in groups.items()
        }

    def label(self, name: str, short: bool = False) -> str:
        """Return the label of a result variable from the field table (its name if absent).

        Parameters
        ----------
        name : str
            A result variable.
        short : bool, optional
            The short label (charts, narrow columns) instead of the long one.

        Returns
        -------
        str
            The label.

        Examples
        --------
        >>> import xarray as xr
        >>> import tradepolicy  # registers ds.tp
        >>> ds = xr.Dataset()
        >>> ds.tp.label("welfare_change")
        'change in national welfare'
        >>> ds.tp.label("welfare_change", short=True)
        'Welfare'
        >>> ds.tp.label("not_a_field")
        'not_a_field'
        """
        meta = result_fields().get(name)
        if meta is None:
            return name
        return meta["short_label"] if short else meta["long_name"]

    @overload
    def money(self, value: float, commodity: str | None = None) -> float: ...
    @overload
    def money(self, value: np.ndarray, commodity: str | None = None) -> np.ndarray: ...
    def money(self, value: float | np.ndarray, commodity: str | None = None) -> float | np.ndarray:
        """Convert a currency-per-year amount to the display unit (millions per year), via pint.

        Parameters
        ----------
        value : float or ndarray
            An amount in currency per year.
        commodity : str, optional
            The market, when the Dataset stacks several (default: the first).

        Returns
        -------
        float or ndarray
            The amount in the display unit (:meth:`money_unit`).

        Examples
        --------
        >>> import xarray as xr
        >>> import tradepolicy  # registers ds.tp
        >>> ds = xr.Dataset({"welfare_change": ("region", [1.5e8], {"units": "USD/year"})})
        >>> float(ds.tp.money(352.3e6)), ds.tp.money_unit()
        (352.3, 'M USD/yr')
        >>> ds.tp.money(ds["welfare_change"].values).tolist()
        [150.0]
        """
        cur = self._currency(commodity)
        q = ureg.Quantity(value, f"{cur}/year").to(MONEY_DISPLAY.format(currency=cur))
        return q.magnitude + 0.0  # no negative zero

    def money_scale(self, commodity: str | None = None) -> float:
        """Currency per year in one display unit of money (``1e6`` for M USD/yr), via pint.

        Parameters
        ----------
        commodity : str, optional
            The market, when the Dataset stacks several (default: the first).

        Returns
        -------
        float
            Currency per year in one display unit.
        """
        return 1.0 / self.money(1.0, commodity)

    def money_unit(self, commodity: str | None = None) -> str:
        """Display unit of money, e.g. ``M USD/yr``.

        Parameters
        ----------
        commodity : str, optional
            The market, when the Dataset stacks several (default: the first).

        Returns
        -------
        str
            The display unit of money.
        """
        return f"M {self._currency(commodity)}/yr"

    def _currency(self, commodity: str | None) -> str:
        units = str(self._ds["welfare_change"].attrs.get("units", "USD/year"))
        return units.split("/")[0] or "USD"

    def budget_cost(self) -> xr.DataArray:
        """Budget cost by payer region, **spending > 0** (the one sign convention of every view).

        Price-gap subsidies, offtakes and stockpile cash flows (purchases spend, releases
        earn). The stock itself is an asset (``stock_value_change``), so welfare counts only a
        release's trading gain. The Dataset keeps the signed welfare parts (costs < 0).

        Returns
        -------
        xarray.DataArray
            Spending (> 0) by scenario, commodity and payer region, currency per year.
        """
        out = -self.fiscal_cost()
        out.attrs = {
            "units": self._ds["subsidy_cost"].attrs["units"],
            "long_name": "budget cost by payer (spending > 0)",
        }
        return out.rename("budget_cost")

    def bloc(self, commodity: str | None = None) -> list[str]:
        """Return the regions standing for the target bloc in a market (from the Dataset attrs).

        Parameters
        ----------
        commodity : str, optional
            The market, when the Dataset stacks several (default: the first).

        Returns
        -------
        list of str
            The bloc's region codes.
        """
        ds = self._ds
        members = str(ds.attrs.get("target_bloc", "")).split()
        if commodity is not None or "commodity" in ds.dims or self.is_chain:
            regions = [str(r) for r in ds.region.values]
            members = [r for r in members if r in regions]
        return members

    def target_share(self) -> float:
        """Return the target's largest share (NaN when the set gives no target).

        Returns
        -------
        float
            The target share, or NaN.
        """
        return float(self._ds.attrs.get("target_max_share", np.nan))

    def options(self, commodity: str | None = None) -> pd.DataFrame:
        """Options × who pays and cost-effectiveness, one row per scenario (docs/model.md).

        Columns: ``meets_target``, ``dependence`` (bloc share on its largest outside supplier),
        ``largest_outside_supplier``, ``unattributed_share`` (aggregates such as ROW),
        ``points_removed`` (percentage points of dependence removed against the baseline),
        ``budget_cost`` (spending > 0, every payer) and ``budget_cost_bloc``,
        ``cost_to_bloc_buyers`` (minus the bloc's consumer surplus change, a cost > 0),
        ``bloc_producers``, ``foreign_producers`` (producer surplus change, gains > 0),
        ``bloc_welfare``, ``world_welfare`` (money in the display unit, :meth:`money_unit`),
        ``budget_cost_per_point`` and ``buyer_cost_per_point`` (NaN and a note where the option
        moves dependence by less than :data:`MIN_POINTS`), ``new_bloc_supply`` (change in
        members' output, quantity per year), ``solved`` and ``warnings`` (plain sentences).

        For a chain, ``commodity`` names a stage (that stage alone); without it the options of
        the whole chain: dependence, its target and new supply at the target stage, and money
        (budget, buyers, producers, welfare) summed over the stages; the warnings of every
        stage, each named.

        Parameters
        ----------
        commodity : str, optional
            The market (default: the first); for a chain, a stage (default: the
            whole chain).

        Returns
        -------
        pandas.DataFrame
            One row per scenario (index ``scenario``).
        """
        if self.is_chain:
            if commodity is not None:
                return self.stage(commodity).tp.options()
            table = self.chain_total().tp.options()
            table["warnings"] = ["; ".join(self.warnings(str(s))) for s in table.index]
            table.attrs["target_stage"] = self.target_stage
            return table
        ds = self._ds.sel(commodity=commodity or self.commodities[0])
        c = str(ds.commodity.values)
        members = [r for r in self.bloc() if r in set(map(str, ds.region.values))]
        in_bloc = ds.region.isin(members)
        money = lambda da: self.money(np.asarray(da, dtype=float), c)  # noqa: E731
        dep = ds["bloc_dependency"]
        removed = 100.0 * (dep.sel(scenario="baseline") - dep)
        budget = self.budget_cost().sel(commodity=c)
        buyers = -ds["consumer_surplus_change"].where(in_bloc).sum("region", min_count=1)
        ps = ds["producer_surplus_change"]
        solved = ds["converged"] == 1
        table = pd.DataFrame(
            {
                "meets_target": ds["meets_target"].to_series().map({1: "yes", 0: "no", -1: ""}),
                "dependence": dep.to_series(),
                "largest_outside_supplier": ds["bloc_top_supplier"].to_series(),
                "unattributed_share": ds["bloc_aggregate_share"].to_series(),
                "points_removed": removed.to_series(),
                "budget_cost": money(budget.sum("region", min_count=1)),
                "budget_cost_bloc": money(budget.where(in_bloc).sum("region", min_count=1)),
                "cost_to_bloc_buyers": money(buyers),
                "bloc_producers": money(ps.where(in_bloc).sum("region", min_count=1)),
                "foreign_producers": money(ps.where(~in_bloc).sum("region", min_count=1)),
                "bloc_welfare": money(
                    ds["welfare_change"].where(in_bloc).sum("region", min_count=1)
                ),
                "world_welfare": money(ds["welfare_change"].sum("region", min_count=1)),
                "new_bloc_supply": (
                    ds["production"].where(in_bloc).sum("region")
                    - ds["production"].where(in_bloc).sum("region").sel(scenario="baseline")
                ).to_series(),
                "solved": solved.to_series(),
            },
            index=pd.Index([str(s) for s in ds.scenario.values], name="scenario"),
        )
        pts = table["points_removed"]
        moves = pts >= MIN_POINTS  # cost per point only where dependence falls
        with np.errstate(invalid="ignore", divide="ignore"):
            table["budget_cost_per_point"] = (table["budget_cost"] / pts).where(moves)
            table["buyer_cost_per_point"] = (table["cost_to_bloc_buyers"] / pts).where(moves)
        note = np.where(pts <= -MIN_POINTS, "raises dependence", "does not move dependence")
        table["note"] = np.where(moves | (table.index == "baseline"), "", note)
        table.loc[~table["solved"], "note"] = "not solved"
        for col in table.columns:  # a scenario that did not solve shows no numbers
            if table[col].dtype.kind == "f":
                table.loc[~table["solved"], col] = np.nan
        table["warnings"] = ["; ".join(self.warnings(s, c)) for s in table.index]
        table.attrs["units"] = {
            **{
                k: self.money_unit(c)
                for k in (
                    "budget_cost",
                    "budget_cost_bloc",
                    "cost_to_bloc_buyers",
                    "bloc_producers",
                    "foreign_producers",
                    "bloc_welfare",
                    "world_welfare",
                )
            },
            "budget_cost_per_point": f"{self.money_unit(c)} per point",
            "buyer_cost_per_point": f"{self.money_unit(c)} per point",
            "dependence": "1",
            "unattributed_share": "1",
            "points_removed": "percentage points",
            "new_bloc_supply": str(ds["production"].attrs.get("units", "")),
        }
        table.attrs["bloc"] = members
        table.attrs["target"] = self.target_share()
        return table

    def who_pays(self, scenario: str, commodity: str | None = None) -> pd.DataFrame:
        """Who gains and who pays in one scenario, per region (money in the display unit).

        Cost to buyers (> 0 = cost), producers' gain, budget cost (spending > 0), border
        revenue and rents (> 0 = income), welfare, and bloc membership.

        For a chain, ``commodity`` names a stage; without it every amount is summed over the
        stages (the chain's regions).

        Parameters
        ----------
        scenario : str
            A scenario name.
        commodity : str, optional
            The market (default: the first); for a chain, a stage (default: the
            whole chain).

        Returns
        -------
        pandas.DataFrame
            One row per region, money in the display unit.
        """
        if self.is_chain:
            sub = self.chain_total() if commodity is None else self.stage(commodity)
            return sub.tp.who_pays(scenario)
        ds = self._ds.sel(commodity=commodity or self.commodities[0], scenario=scenario)
        c = str(ds.commodity.values)
        members = set(self.bloc())
        revenue = sum(
            ds[k]
            for k in (
                "tariff_revenue_change",
                "levy_revenue",
                "undertaking_rent",
                "export_tax_revenue_change",
                "quota_rent_income",
            )
            if k in ds
        )
        budget = self.budget_cost().sel(commodity=c, scenario=scenario)
        regions = [str(r) for r in ds.region.values]
        table = pd.DataFrame(
            {
                "name": [region_table.name(r) for r in regions],
                "bloc_member": [r in members for r in regions],
                "cost_to_buyers": self.money(-ds["consumer_surplus_change"].values, c),
                "producers": self.money(ds["producer_surplus_change"].values, c),
                "budget_cost": self.money(budget.values, c),
                "revenue_and_rents": self.money(np.asarray(revenue), c),
                "welfare": self.money(ds["welfare_change"].values, c),
            },
            index=pd.Index(regions, name="region"),
        )
        table.attrs["units"] = self.money_unit(c)
        return table

    def warnings(self, scenario: str, commodity: str | None = None) -> list[str]:
        """Plain sentences for every validity flag of one scenario (empty when none).

        For a chain, ``commodity`` names a stage; without it the warnings of every stage,
        each starting with the stage's name (``Sintered NdFeB magnets: prices ...``).

        Parameters
        ----------
        scenario : str
            A scenario name.
        commodity : str, optional
            The market (default: the first); for a chain, a stage (default: the
            whole chain).

        Returns
        -------
        list of str
            The warnings, in plain sentences.
        """
        if self.is_chain:
            if commodity is not None:
                return self.stage(commodity).tp.warnings(scenario)
            return [
                f"{self.stage_name(st)}: {w}"
                for st in self.stage_order()
                for w in self.stage(st).tp.warnings(scenario)
            ]
        ds = self._ds.sel(commodity=commodity or self.commodities[0], scenario=scenario)
        if "validity_flag" not in ds or int(ds["converged"]) != 1:
            return []
        out = []
        flags = ds["validity_flag"].fillna(0).astype(int).values
        regions = [str(r) for r in ds.region.values]
        texts = {
            indicators.FLAG_PRICE: (
                "prices beyond ×{:g} (or below a third of) their base in {}: outside what the "
                "model can represent; read as a sign of acute shortage, not a forecast"
            ),
            indicators.FLAG_VARIETY: (
                "a major supply source is nearly cut off for {1}: welfare and price figures "
                "there rest on the CES loss-of-variety term and are unreliable"
            ),
            indicators.FLAG_OUTPUT: (
                "output more than doubles in {1}: beyond plausible capacity within a year"
            ),
        }
        for bit, text in texts.items():
            hit = [r for r, f in zip(regions, flags, strict=True) if f & bit]
            if hit:
                names = region_table.describe_bloc(hit)
                out.append(text.format(indicators.PRICE_RATIO_LIMIT, names))
        return out

    def flagged(self) -> xr.DataArray:
        """(scenario, commodity) 1 where any region carries a validity flag.

        Returns
        -------
        xarray.DataArray
            True where a region is flagged, by scenario and commodity.
        """
        return (self._ds["validity_flag"].fillna(0).astype(int) > 0).any("region")

    def to_iamc(self, model: str = "tradepolicy") -> pd.DataFrame:
        """Return the IAMC long format as plain pandas.

        Columns model, scenario, region, variable, unit, year, value: every regional variable
        with units, plus world totals of summable ones.

        Parameters
        ----------
        model : str, optional
            The model name written in the ``model`` column.

        Returns
        -------
        pandas.DataFrame
            The long table, one row per value.
        """
        ds = self._ds
        rows = []
        year = int(ds.attrs.get("target_year", 0)) or None
        for name, da in ds.data_vars.items():
            meta = result_fields().get(str(name))
            if meta is None or da.dims[-1] != "region" or da.dtype.kind not in "fi":
                continue
            if "draw" in da.dims or "quantile" in da.dims:
                continue
            unit = str(da.attrs.get("units", ""))
            for c in ds[self.market_dim].values:
                sub = da.sel({self.market_dim: c})
                frame = sub.to_series().dropna().reset_index()
                var = f"{meta['long_name']}|{c}"
                for _, r in frame.iterrows():
                    rows.append((model, r["scenario"], r["region"], var, unit, year, r[da.name]))
                if meta["aggregation"] == "sum":
                    world = sub.sum("region", min_count=1).to_series().dropna()
                    for scen, v in world.items():
                        rows.append((model, scen, "World", var, unit, year, float(v)))
        cols = ["model", "scenario", "region", "variable", "unit", "year", "value"]
        return pd.DataFrame(rows, columns=cols)

    def fiscal_cost(self) -> xr.DataArray:
        """Fiscal cost by payer region: subsidies + offtakes + stockpiles (negative = cost).

        Returns
        -------
        xarray.DataArray
            The signed fiscal cost by scenario, commodity and payer region.
        """
        return _fiscal(self._ds)

    @property
    def has_draws(self) -> bool:
        """Whether the results carry Monte Carlo draws (``--draws``)."""
        return "draw" in self._full.dims

    def draws(self, var: str) -> xr.DataArray:
        """Return the Monte Carlo draws (1..N, dim ``draw``) of ``var``.

        Draws that did not solve are NaN. ``var`` may also be ``fiscal_cost`` or
        ``budget_cost`` (spending > 0).

        Parameters
        ----------
        var : str
            A result variable (a name of the result field table).

        Returns
        -------
        xarray.DataArray
            The draws 1..N of ``var`` (dim ``draw``).

        Raises
        ------
        KeyError
            The results carry no draws, or none of ``var``.
        """
        if not self.has_draws:
            raise KeyError("these results carry no Monte Carlo draws (solve with draws=N)")
        full = self._full
        if var in ("fiscal_cost", "budget_cost"):
            fiscal = _fiscal(full)
            da = -fiscal if var == "budget_cost" else fiscal
            da.attrs = {"units": fiscal.attrs["units"], "long_name": var}
        elif var in full and "draw" in full[var].dims:
            da = full[var]
        else:
            have = sorted(str(k) for k, v in full.data_vars.items() if "draw" in v.dims)
            raise KeyError(f"no draws for {var!r} (available: {', '.join(have)})")
        ok = full["draw_converged"] == 1
        out = da.astype(float).where(ok).sel(draw=slice(1, None))
        out.attrs = dict(da.attrs)
        return out

    def quantiles(self, var: str, q: tuple[float, ...] = QUANTILES) -> xr.DataArray:
        """Quantiles (default 5/50/95%) of ``var`` over the Monte Carlo draws (dim ``quantile``).

        Parameters
        ----------
        var : str
            A result variable (a name of the result field table).
        q : tuple of float, optional
            The quantiles, between 0 and 1.

        Returns
        -------
        xarray.DataArray
            The quantiles, with dim ``quantile`` in place of ``draw``.
        """
        d = self.draws(var)
        with warnings.catch_warnings():  # all-NaN cells (e.g. a non-producer's price)
            warnings.simplefilter("ignore", RuntimeWarning)
            out = d.quantile(list(q), dim="draw", skipna=True)
        out.attrs = {**d.attrs, "long_name": f"{d.attrs.get('long_name', var)} (quantiles)"}
        return out

    def total_quantiles(
        self, var: str, dim: str = "region", q: tuple[float, ...] = QUANTILES
    ) -> xr.DataArray:
        """Quantiles of ``var`` summed over ``dim`` (e.g. world welfare), draw by draw.

        The quantile of a sum is not the sum of quantiles, so this sums each draw first.

        Parameters
        ----------
        var : str
            A result variable (a name of the result field table).
        dim : str, optional
            The dimension summed draw by draw (default ``region``).
        q : tuple of float, optional
            The quantiles, between 0 and 1.

        Returns
        -------
        xarray.DataArray
            The quantiles of the sum, with dim ``quantile``.
        """
        d = self.draws(var).sum(dim, min_count=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = d.quantile(list(q), dim="draw", skipna=True)
        out.attrs = {**d.attrs, "long_name": f"{var} summed over {dim}"}
        return out

    def range(
        self,
        var: str,
        scenario: str,
        commodity: str | None = None,
        region: str | list[str] | None = None,
    ) -> tuple[float, float] | None:
        """Return the 5–95% Monte Carlo range of ``var`` in one scenario.

        Of one region, or summed over ``region`` (a list, or ``"world"``) draw by draw. ``var``
        may be ``budget_cost`` (spending > 0, the views' sign). ``None`` without draws or when
        the range is empty.

        Parameters
        ----------
        var : str
            A result variable (a name of the result field table).
        scenario : str
            A scenario name.
        commodity : str, optional
            The market, when the Dataset stacks several (default: the first).
        region : str or list of str, optional
            A region, a list of regions summed, or ``"world"``.

        Returns
        -------
        tuple of (float, float) or None
            The 5% and 95% quantiles, or None.
        """
        if not self.has_draws:
            return None
        if self.is_chain:  # a stage, or the chain's total (welfare summed over stages)
            sub = self.stage(commodity) if commodity is not None else self.chain_total()
            return sub.tp.range(var, scenario, None, region)
        try:
            da = self.draws(var)
        except KeyError:
            return None
        da = da.sel(scenario=scenario, commodity=commodity or self.commodities[0])
        if region == "world":
            da = da.sum("region", min_count=1)
        elif isinstance(region, list):
            da = da.sel(region=region).sum("region", min_count=1)
        elif region is not None:
            da = da.sel(region=region)
        vals = np.asarray(da.values, dtype=float)
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            return None
        lo, hi = np.quantile(vals, [0.05, 0.95])
        if abs(hi - lo) <= 1e-9 * max(abs(lo), abs(hi), 1.0):
            return None
        return float(lo), float(hi)

    def target_probability(self) -> xr.DataArray:
        """Share of the Monte Carlo draws in which the bloc meets its target.

        By (scenario, commodity); NaN without draws or without a target.

        Returns
        -------
        xarray.DataArray
            The share in [0, 1], by scenario and commodity.
        """
        if not self.has_draws:
            return xr.full_like(self._ds["bloc_dependency"], np.nan)
        met = self.draws("meets_target")
        out = (met == 1).where(met.notnull() & (met >= 0)).mean("draw")
        out.attrs = {"units": "1", "long_name": "probability of meeting the target"}
        return out

    def summary(self) -> pd.DataFrame:
        """One row per (commodity, scenario): solver status and welfare totals.

        World welfare, levy revenue, quota rents and the budget cost (subsidies, offtakes and
        stockpiles; spending > 0).

        Returns
        -------
        pandas.DataFrame
            One row per commodity and scenario.
        """
        ds = self._ds
        # min_count: a scenario that did not solve (all NaN) stays NaN, never a 0
        world = ds["welfare_change"].sum("region", min_count=1)
        budget = self.budget_cost().sum("region", min_count=1)
        table = pd.DataFrame(
            {
                "converged": ds["converged"].to_series(),
                "iterations": ds["iterations"].to_series(),
                "max_residual": ds["max_residual"].to_series(),
                "world_welfare_change": world.to_series(),
                "levy_revenue": ds["levy_revenue"].sum("region", min_count=1).to_series(),
                "quota_rent_income": ds["quota_rent_income"].sum("region", min_count=1).to_series(),
                "budget_cost": budget.to_series(),
            }
        )
        if self.has_draws:  # ranges of the world totals: each draw summed first
            for var, col in (("welfare_change", "world_welfare_change"), ("budget_cost", None)):
                q = self.total_quantiles(var)
                table[f"{col or var}_q05"] = q.sel(quantile=0.05).to_series()
                table[f"{col or var}_q95"] = q.sel(quantile=0.95).to_series()
        return table
