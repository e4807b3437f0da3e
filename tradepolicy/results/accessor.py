"""The ``ds.tp`` accessor: comparisons against the baseline and quick diagnostics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from tradepolicy.measures.base import FISCAL_ENTRIES, WELFARE_ENTRIES

#: variables whose Monte Carlo range :meth:`TradePolicyAccessor.region_table` reports
RANGE_VARIABLES = ("producer_price", "consumer_price", "top_supplier_share", "welfare_change")


@xr.register_dataset_accessor("tp")
class TradePolicyAccessor:
    """Convenience views of a tradepolicy results Dataset."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def scenarios(self) -> list[str]:
        return [str(s) for s in self._ds.scenario.values]

    @property
    def commodities(self) -> list[str]:
        return [str(c) for c in self._ds.commodity.values]

    def change(self, var: str) -> xr.DataArray:
        """Absolute change of ``var`` against the baseline."""
        da = self._ds[var]
        out = da - da.sel(scenario="baseline")
        out.attrs = dict(da.attrs, long_name=f"change in {da.attrs.get('long_name', var)}")
        return out

    def pct_change(self, var: str) -> xr.DataArray:
        """Percentage change of ``var`` against the baseline."""
        da = self._ds[var]
        base = da.sel(scenario="baseline")
        out = 100.0 * (da - base) / base.where(base != 0)
        out.attrs = {"units": "percent", "long_name": f"% change in {da.attrs.get('long_name')}"}
        return out

    def world_welfare(self) -> xr.DataArray:
        """World total of each welfare part and of ``welfare_change`` (sum over regions)."""
        parts = [*WELFARE_ENTRIES, "welfare_change"]
        return self._ds[parts].sum("region").to_dataarray("component")

    def failed(self) -> list[tuple[str, str, str]]:
        """(scenario, commodity, message) of every scenario that did not solve.

        Scenarios a stacked market does not define (``converged == -1``) are not failures.
        """
        ds = self._ds
        out = []
        for c in ds.commodity.values:
            for s in ds.scenario.values:
                if int(ds.converged.sel(scenario=s, commodity=c)) == 0:
                    msg = str(ds.solver_message.sel(scenario=s, commodity=c).values)
                    out.append((str(s), str(c), msg))
        return out

    def failed_draw_share(self) -> tuple[float, tuple[str, str] | None, int]:
        """The largest share of Monte Carlo draws that did not solve in any one scenario:
        (share, (scenario, commodity) where it is, draws); (0.0, None, 0) without draws.

        Scenarios a stacked market does not define are left out.
        """
        if "draw_converged" not in self._ds:
            return 0.0, None, 0
        ds = self._ds
        failed = (ds["draw_converged"] == 0).mean("draw").where(ds["converged"] != -1, 0.0)
        flat = failed.stack(cell=("scenario", "commodity"))
        i = int(np.argmax(flat.values))
        where = (str(flat.scenario.values[i]), str(flat.commodity.values[i]))
        return float(flat.values[i]), where, int(ds.sizes["draw"])

    def region_table(self, scenario: str, commodity: str | None = None) -> pd.DataFrame:
        """Per-region comparison of ``scenario`` against the baseline for one market."""
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
                q = ds[f"{var}_quantiles"].sel(scenario=scenario)
                table[f"{var}_q05"] = q.sel(quantile=0.05).to_series()
                table[f"{var}_q95"] = q.sel(quantile=0.95).to_series()
        table.index.name = "region"
        return table

    def fiscal_cost(self) -> xr.DataArray:
        """Fiscal cost by payer region: subsidies + offtakes + stockpiles (negative = cost)."""
        out = sum(self._ds[k] for k in FISCAL_ENTRIES)
        out.attrs = {
            "units": self._ds["subsidy_cost"].attrs["units"],
            "long_name": "fiscal cost by payer (negative = cost)",
        }
        return out.rename("fiscal_cost")

    @property
    def has_draws(self) -> bool:
        """Whether the results carry Monte Carlo draws (``--draws``)."""
        return "draw" in self._ds.dims

    def quantiles(self, var: str) -> xr.DataArray:
        """5/50/95% quantiles of ``var`` over the Monte Carlo draws (dim ``quantile``)."""
        key = f"{var}_quantiles"
        if key not in self._ds:
            have = sorted(k[: -len("_quantiles")] for k in self._ds if k.endswith("_quantiles"))
            if not have:
                raise KeyError("these results carry no Monte Carlo draws (solve with draws=N)")
            raise KeyError(f"no draws for {var!r} (available: {', '.join(have)})")
        return self._ds[key]

    def total_quantiles(self, var: str, dim: str = "region") -> xr.DataArray:
        """5/50/95% quantiles of ``var`` summed over ``dim`` (e.g. world welfare), per draw.

        The quantile of a sum is not the sum of quantiles, so this sums each draw first.
        """
        self.quantiles(var)  # clear error when there are no draws
        draws = self._ds[f"{var}_draws"].sum(dim, min_count=1)
        q = draws.quantile(list(self._ds["quantile"].values), dim="draw", skipna=True)
        q.attrs = {**self._ds[var + "_draws"].attrs, "long_name": f"{var} summed over {dim}"}
        return q

    def summary(self) -> pd.DataFrame:
        """One row per (commodity, scenario): solver status, world welfare, levy revenue,
        fiscal cost (subsidies, offtakes and stockpiles; negative = cost) and quota rents."""
        ds = self._ds
        # min_count: a scenario that did not solve (all NaN) stays NaN, never a 0
        world = ds["welfare_change"].sum("region", min_count=1)
        fiscal = self.fiscal_cost().sum("region", min_count=1)
        table = pd.DataFrame(
            {
                "converged": ds["converged"].to_series(),
                "iterations": ds["iterations"].to_series(),
                "max_residual": ds["max_residual"].to_series(),
                "world_welfare_change": world.to_series(),
                "levy_revenue": ds["levy_revenue"].sum("region", min_count=1).to_series(),
                "quota_rent_income": ds["quota_rent_income"].sum("region", min_count=1).to_series(),
                "fiscal_cost": fiscal.to_series(),
            }
        )
        if self.has_draws:  # ranges of the world totals: each draw summed first
            for var, col in (("welfare_change", "world_welfare_change"), ("fiscal_cost", None)):
                q = self.total_quantiles(var)
                col = col or var
                table[f"{col}_q05"] = q.sel(quantile=0.05).to_series()
                table[f"{col}_q95"] = q.sel(quantile=0.95).to_series()
        return table
