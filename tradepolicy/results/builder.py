"""Build the results Dataset (docs/model.md): labels, units and provenance are attached here."""

from __future__ import annotations

import csv
import json
from collections.abc import Hashable
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pydantic_core
import xarray as xr

from tradepolicy import __version__
from tradepolicy.results import indicators

#: ``converged`` value of a scenario that a stacked market does not define
NOT_DEFINED = -1

#: CF flag attributes of the integer flag variables
FLAGS: dict[str, dict[str, Any]] = {
    "converged": {
        "flag_values": np.array([-1, 0, 1], dtype=np.int8),
        "flag_meanings": "not_defined_for_market not_solved solved",
    },
    "meets_target": {
        "flag_values": np.array([-1, 0, 1], dtype=np.int8),
        "flag_meanings": "no_target not_met met",
    },
    "top_supplier_meets_target": {
        "flag_values": np.array([-1, 0, 1], dtype=np.int8),
        "flag_meanings": "no_target not_met met",
    },
    "validity_flag": {
        "flag_masks": np.array(list(indicators.FLAG_MEANINGS), dtype=np.int16),
        "flag_meanings": " ".join(indicators.FLAG_MEANINGS.values()),
    },
}


@cache
def result_fields() -> dict[str, dict[str, str]]:
    """The result variable table: name -> dims, units template, long_name, description."""
    text = resources.files("tradepolicy.data").joinpath("result_fields.csv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines())
    return {r["name"]: r for r in rows}


def _units(template: str, market) -> str:
    if not template:
        return "1"
    return template.format(
        price=market.price_unit, quantity=market.quantity_unit, currency=market.currency
    )


def build_dataset(
    market,
    names: list[str],
    variables: dict[str, np.ndarray],
    attrs: dict[str, Any],
) -> xr.Dataset:
    """Wrap arrays for one market (leading axis = scenario) into a labelled Dataset.

    The market's axes (commodity, regions) are built once per market object
    (:func:`_market_axes`); the Dataset is put together from the variables as they are
    (the arrays are not converted, compared or aligned: their shapes are checked against
    the axes, and a mismatch goes through xarray's own constructor, which names it).
    """
    data_vars: dict[Hashable, xr.Variable] = {}
    meta = _variable_meta(market)
    for name, arr in variables.items():
        arr = np.asarray(arr)
        dims, with_units, without = meta[name]
        # a copy of the field's attributes (each Dataset owns its own); no units on strings
        var_attrs = dict(without if arr.dtype.kind == "O" else with_units)
        # plain numpy arrays of numbers or strings, with the commodity axis (a view):
        # nothing for xarray to convert
        data_vars[name] = xr.Variable(dims, arr[:, None], attrs=var_attrs, fastpath=True)
    scenario = xr.Coordinates({"scenario": ("scenario", np.array(names, dtype=object))})
    axes = _market_axes(market)
    # fresh Variable objects (their attrs are the Dataset's own); the data are immutable
    # pandas indexes, and the commodity's name is a new array
    coords = {k: v.copy(deep=False) for k, v in scenario.variables.items()}
    coords.update((k, v.copy(deep=False)) for k, v in axes.variables.items())
    coords["commodity_name"] = xr.Variable(
        "commodity", np.array([market.commodity], dtype=object), {"long_name": "commodity"}
    )
    sizes = {"scenario": len(names), **axes.sizes}
    indexes: dict[Hashable, Any] = {**scenario.xindexes, **axes.xindexes}
    direct = getattr(xr.Dataset, "_construct_direct", None)
    if direct is None or not all(
        v.dims in _DIMS and v.shape == tuple(sizes[d] for d in v.dims) for v in data_vars.values()
    ):  # the public constructor (it checks everything and names what does not fit)
        coordinates = xr.Coordinates(coords, indexes=indexes)
        return xr.Dataset(data_vars, coords=coordinates, attrs=attrs)
    return direct({**data_vars, **coords}, set(coords), sizes, attrs, indexes)


def _variable_meta(market) -> dict[str, tuple[tuple[str, ...], dict, dict]]:
    """Per result field: its dims and its attributes with and without units, for
    ``market``'s units (made once per market object, on its memo; callers copy the dicts)."""

    def make() -> dict[str, tuple[tuple[str, ...], dict, dict]]:
        got = {}
        for name, meta in result_fields().items():
            without = {"long_name": meta["long_name"], "description": meta["description"]}
            with_units = {"units": _units(meta["units"], market), **without}
            flags = FLAGS.get(name, {})
            got[name] = (
                tuple(meta["dims"].split()),
                {**with_units, **flags},
                {**without, **flags},
            )
        return got

    return _on_memo(market, ("result_variable_meta",), make)


def _on_memo(market, key: tuple, make: Any) -> Any:
    """:func:`~tradepolicy.measures.base.memo_get` on ``market``'s memo; made afresh for an
    object without one."""
    from tradepolicy.measures.base import memo_get

    if isinstance(getattr(market, "memo", None), dict):
        return memo_get(market, key, make)
    return make()


#: the dimensions of result variables (the field table's, with the commodity axis)
_DIMS = frozenset(
    {
        ("scenario", "commodity"),
        ("scenario", "commodity", "region"),
        ("scenario", "commodity", "exporter", "importer"),
    }
)


def _market_axes(market) -> xr.Coordinates:
    """The coordinates of a market's results but ``scenario`` and ``commodity_name``:
    ``commodity``, ``region``, ``exporter``, ``importer`` with their indexes (kept on the
    market's memo: a market's regions do not change)."""

    def make() -> xr.Coordinates:
        regions = list(market.regions)
        return xr.Coordinates(
            {
                "commodity": (
                    "commodity",
                    np.array([market.id], dtype=object),
                    {"long_name": "market id"},
                ),
                "region": ("region", np.array(regions, dtype=object)),
                "exporter": ("exporter", np.array(regions, dtype=object)),
                "importer": ("importer", np.array(regions, dtype=object)),
            }
        )

    return _on_memo(market, ("result_axes",), make)


def provenance_attrs(
    markets: list,
    spec: dict[str, Any],
    formulation: str,
    history: str | None = None,
    spec_json: str | None = None,
) -> dict[str, Any]:
    """Global attributes: conventions, source, history, market and scenario specs, hashes."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    hashes = {m.id: m.data_hash for m in markets}
    return {
        "Conventions": "CF-1.10",
        "title": spec.get("title") or "tradepolicy scenario results",
        "source": f"tradepolicy {__version__}",
        "history": f"{now}: {history or 'tradepolicy.solve'}",
        "date_created": now,
        "formulation": formulation,
        "markets": _markets_json(markets),
        # keys in the order of the file's schema (pydantic_core writes a large spec several
        # times faster than json.dumps; readers parse it, so the order carries no meaning)
        "scenario_spec": spec_json
        if spec_json is not None
        else pydantic_core.to_json(spec).decode(),
        "calibration_id": ";".join(f"{k}@{v[:12]}" for k, v in sorted(hashes.items())),
        "data_hash": ";".join(f"{k}:{v}" for k, v in sorted(hashes.items())),
        "target_share": float(spec["target_share"]) if spec.get("target_share") else np.nan,
    }


def _markets_json(markets: list) -> str:
    """``json.dumps({m.id: m.to_dict() for m in markets}, sort_keys=True)``, each market's
    part written once per market object (on its memo: a market's data do not change)."""
    parts = {}
    for m in markets:
        memo = getattr(m, "memo", None)
        text = memo.get(("definition_json",)) if isinstance(memo, dict) else None
        if text is None:
            text = json.dumps(m.to_dict(), sort_keys=True)
            if isinstance(memo, dict):
                memo[("definition_json",)] = text
        parts[m.id] = text
    # the dict written as json.dumps writes it (sorted keys, ", " and ": " separators)
    return "{" + ", ".join(f"{json.dumps(k)}: {parts[k]}" for k in sorted(parts)) + "}"


def combine(datasets: list[xr.Dataset]) -> xr.Dataset:
    """Stack results of several markets along ``commodity`` (regions become the union).

    Flows and quantities of regions absent from a market are 0; prices, shares and other
    intensive variables are NaN.
    """
    if len(datasets) == 1:
        return datasets[0]
    # ordered unions: baseline first, then scenarios and regions in first-seen order
    scenarios = list(dict.fromkeys(str(n) for ds in datasets for n in ds.scenario.values))
    scenarios = ["baseline", *(n for n in scenarios if n != "baseline")]
    regions = list(dict.fromkeys(str(r) for ds in datasets for r in ds.region.values))
    fill = _fill_values(datasets[0])
    aligned = [
        ds.reindex(
            scenario=scenarios, region=regions, exporter=regions, importer=regions, fill_value=fill
        )
        for ds in datasets
    ]
    out = xr.concat(aligned, dim="commodity", combine_attrs="drop_conflicts", data_vars="all")
    attrs = dict(datasets[0].attrs)
    markets: dict[str, Any] = {}
    for ds in datasets:
        markets.update(json.loads(ds.attrs["markets"]))
    attrs["markets"] = json.dumps(markets, sort_keys=True)
    attrs["scenario_spec"] = json.dumps(
        [json.loads(ds.attrs["scenario_spec"]) for ds in datasets], sort_keys=True
    )
    attrs["calibration_id"] = ";".join(ds.attrs["calibration_id"] for ds in datasets)
    attrs["data_hash"] = ";".join(ds.attrs["data_hash"] for ds in datasets)
    out.attrs = attrs
    return out


def stack_stages(datasets: list[xr.Dataset], regions: tuple[str, ...]) -> xr.Dataset:
    """Stack the results of a chain's stages (one Dataset per stage market, the same
    scenarios and attributes) along ``stage``, on the chain's regions.

    A region a stage does not list has no output, use or flows there (0) and no prices (NaN).
    """
    fill = _fill_values(datasets[0])
    regions_ = list(regions)
    aligned = [
        ds.reindex(region=regions_, exporter=regions_, importer=regions_, fill_value=fill).rename(
            commodity="stage"
        )
        for ds in datasets
    ]
    out = xr.concat(aligned, dim="stage", combine_attrs="override", data_vars="all")
    out["stage"].attrs.update(long_name="stage market id (upstream first)")
    return out


def _fill_values(ds: xr.Dataset) -> dict[str, Any]:
    """What a variable holds where a market does not define it (a region or scenario it
    lacks): 0 for flows and quantities, NaN for prices and shares, flags "not defined"."""
    fill: dict[str, Any] = {}
    for name in map(str, ds.data_vars):
        units = result_fields().get(name, {}).get("units", "")
        extensive = "/year" in units or name in ("production", "consumption", "trade_flow")
        if name == "converged":
            fill[name] = NOT_DEFINED
        elif ds[name].dtype.kind in "iu":
            fill[name] = -1 if name in FLAGS and name != "validity_flag" else 0
        elif name == "solver_message":
            fill[name] = "scenario not defined for this market"
        elif ds[name].dtype.kind == "O":
            fill[name] = ""
        else:
            fill[name] = 0.0 if extensive else np.nan
    return fill
