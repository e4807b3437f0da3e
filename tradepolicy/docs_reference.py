"""The generated measure and results reference of the documentation site.

``docs/scripts/gen_reference.py`` (mkdocs-gen-files) writes the two pages from these
functions at build time, so the reference is read from the code and cannot drift from it:

- :func:`measures_page`: one section per registered measure type (the registry of
  :mod:`tradepolicy.measures`), with its docstring, a field table from the pydantic model
  (name, type, default, bounds, description) and its class-level caveats;
- :func:`results_page`: the results variable table (``tradepolicy/data/result_fields.csv``,
  read by :func:`tradepolicy.results.builder.result_fields`), then the pathway and risk
  variables, read from their builder (:mod:`tradepolicy.pathway.results`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
import types
import typing
from typing import Any

import numpy as np
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

#: pydantic constraint metadata shown in the bounds column, with its symbol
_BOUNDS = (
    ("gt", ">"),
    ("ge", "≥"),
    ("lt", "<"),
    ("le", "≤"),
    ("min_length", "min length"),
    ("max_length", "max length"),
)


def _cell(text: Any) -> str:
    """``text`` as one Markdown table cell (no line breaks, pipes escaped)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _type_name(annotation: Any) -> str:
    """A readable name of a field's annotation (``float | None``, ``list[str]``)."""
    if annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " or ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _bounds(info: Any) -> str:
    """The constraints of a field (``≥ 0, ≤ 1``) from its pydantic metadata."""
    out = []
    metadata = list(info.metadata)
    for m in list(metadata):  # constraints nested in an Annotated type (e.g. Region)
        metadata.extend(getattr(m, "metadata", []) or [])
    if typing.get_origin(info.annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(info.annotation):  # ``Annotated[...] | None``
            metadata.extend(getattr(arg, "__metadata__", ()) or ())
    for m in metadata:
        for attr, symbol in _BOUNDS:
            value = getattr(m, attr, None)
            if value is not None:
                text = f"{symbol} {value:g}" if isinstance(value, float) else f"{symbol} {value}"
                if text not in out:
                    out.append(text)
    return ", ".join(out)


def _default(info: Any) -> str:
    if info.is_required():
        return "required"
    if info.default is PydanticUndefined and info.default_factory is not None:
        return f"`{info.default_factory()!r}`"
    return f"`{info.default!r}`"


#: fields every measure has (from :class:`~tradepolicy.measures.base.Measure`)
COMMON_FIELDS = ("type", "stage", "start_year", "end_year")
#: fields that only a pathway set reads (a static set refuses them)
PATHWAY_FIELDS = ("start_year", "end_year")


def measure_fields(cls: type[BaseModel]) -> list[dict[str, str]]:
    """One row per field of measure class ``cls``: name, type, default, bounds, description
    and whether it is read in pathway sets only."""
    rows = []
    for name, info in cls.model_fields.items():
        pathway = bool(getattr(cls, "pathway_only", False)) or name in PATHWAY_FIELDS
        rows.append(
            {
                "name": name,
                "type": _type_name(info.annotation),
                "default": _default(info),
                "bounds": _bounds(info),
                "description": info.description
                or ("the measure's name in a scenario file" if name == "type" else ""),
                "pathway_only": "yes" if pathway else "",
            }
        )
    return rows


#: a Sphinx role (``:class:`~tradepolicy.market.Market```), shown as code in Markdown
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def _doc(cls: type) -> str:
    """The class's own docstring (not an inherited one), Sphinx roles as code."""
    doc = inspect.getdoc(cls) or ""
    base = inspect.getdoc(cls.__mro__[1]) or ""
    return "" if doc == base else _ROLE.sub(r"`\1`", doc)


def measure_section(name: str, cls: type) -> str:
    """The Markdown section of one registered measure type."""
    lines = [f"## `{name}`", "", f"Class `{cls.__module__}.{cls.__qualname__}`."]
    if getattr(cls, "pathway_only", False):
        reason = getattr(cls, "pathway_reason", "")
        lines.append(
            "**Pathway sets only**" + (f" ({reason})" if reason else "") + ": a static solve "
            "refuses it."
        )
    doc = _doc(cls)
    if doc:
        lines += ["", doc]
    lines += [
        "",
        "| field | type | default | bounds | description | pathway only |",
        "|---|---|---|---|---|---|",
    ]
    for row in measure_fields(cls):
        lines.append(
            "| "
            + " | ".join(
                _cell(row[k]) if k != "name" else f"`{row[k]}`"
                for k in ("name", "type", "default", "bounds", "description", "pathway_only")
            )
            + " |"
        )
    notes = []
    region_fields = getattr(cls, "region_fields", ())
    if region_fields:
        notes.append(
            "Region fields (checked against the market's regions): "
            + ", ".join(f"`{f}`" for f in region_fields)
            + "."
        )
    notes.append(
        "GSIM-v1 linear formulation: "
        + ("can represent it." if getattr(cls, "gsim_linear", False) else "cannot represent it.")
    )
    caveat = getattr(cls, "caveat", "")
    if caveat:
        notes.append(f"**Caveat.** {_cell(caveat)}")
    lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def measures_page(types: dict[str, type] | None = None) -> str:
    """The measure reference: one section per registered measure type, in name order."""
    if types is None:
        from tradepolicy.measures import measure_types

        types = measure_types()
    head = textwrap.dedent(
        """\
        # Reference: measures

        Generated from the measure registry (`tradepolicy.measures.measure_types()`) and each
        measure's pydantic model when the site is built, so it matches the code. Field
        descriptions are those of the fields' `Field(description=...)`; the conventions and
        worked examples are in the [measures guide](../measures.md). Every measure also takes
        the common fields `stage` (the stage market of a chain) and `start_year` / `end_year`
        (the years in force, pathway sets only).

        | type | class | pathway sets only |
        |---|---|---|
        """
    )
    index = [
        f"| [`{n}`](#{n}) | `{c.__qualname__}` | "
        f"{'yes' if getattr(c, 'pathway_only', False) else ''} |"
        for n, c in sorted(types.items())
    ]
    sections = [measure_section(n, c) for n, c in sorted(types.items())]
    return head + "\n".join(index) + "\n\n" + "\n".join(sections)


# -- results ---------------------------------------------------------------------------------


def result_rows() -> list[dict[str, str]]:
    """The static results variable table (name, dims, units, long_name, description)."""
    from tradepolicy.results.builder import result_fields

    return [dict(r) for r in result_fields().values()]


#: how the pathway builder's unit expressions read in the reference
_UNIT_NAMES = {"currency": "{currency}", "qunit": "{quantity}", "cur": "{currency}"}


def _render(node: ast.AST | None, src: str, names: dict[str, ast.AST] | None = None) -> str:
    """A string literal or f-string of the builder as text, expressions as ``{...}``; a
    local name bound to a string (``names``) is replaced by that string."""
    names = names or {}
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
            elif isinstance(part, ast.FormattedValue):
                value = part.value
                if isinstance(value, ast.Name) and isinstance(
                    names.get(value.id), (ast.Constant, ast.JoinedStr)
                ):
                    out.append(_render(names[value.id], src, names))
                    continue
                expr = ast.get_source_segment(src, value) or "..."
                spec = ":" + _render(part.format_spec, src) if part.format_spec else ""
                out.append("{" + _UNIT_NAMES.get(expr, expr).strip("{}") + spec + "}")
        return "".join(out)
    if isinstance(node, ast.Name):
        return _UNIT_NAMES.get(node.id, node.id)
    return ast.get_source_segment(src, node) or ""


def _attrs_of(node: ast.AST, src: str, names: dict[str, ast.AST]) -> dict[str, str]:
    """``units`` and ``long_name`` of an attrs dict literal (``{**cur, ...}`` = currency)."""
    out: dict[str, str] = {}
    if not isinstance(node, ast.Dict):
        return out
    for key, value in zip(node.keys, node.values, strict=True):
        if key is None and isinstance(value, ast.Name) and value.id == "cur":
            out["units"] = "{currency}"
        elif isinstance(key, ast.Constant) and key.value in ("units", "long_name"):
            out[key.value] = _render(value, src, names)
    return out


def _dims_of(node: ast.AST, names: dict[str, ast.AST]) -> tuple[str, ...]:
    if isinstance(node, ast.Name) and node.id in names:
        node = names[node.id]
    if isinstance(node, ast.Tuple):
        return tuple(str(e.value) for e in node.elts if isinstance(e, ast.Constant))
    return ()


def pathway_rows() -> list[dict[str, str]]:
    """The variables of a pathway Dataset as the builder (:mod:`tradepolicy.pathway.results`)
    writes them: name, dims, units, long_name and the function that builds it.

    Read from the builder's source: each ``data[name] = xr.Variable(dims, values, attrs)``
    (and ``ds[name] = ...``); names written in a loop over a table (the per-region yearly
    variables, the investment-policy flows, the loss percentiles) are expanded from it, and
    attributes that come from the static table (``_attrs``) are taken from it.
    """
    from tradepolicy.pathway import decisions
    from tradepolicy.pathway import results as pr

    src = inspect.getsource(pr)
    tree = ast.parse(src)
    static = {r["name"]: r for r in result_rows()}
    rows: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(name: str, dims: tuple[str, ...], attrs: dict[str, str], where: str) -> None:
        if name in seen:
            return
        seen.add(name)
        rows.append(
            {
                "name": name,
                "dims": " ".join(dims),
                "units": attrs.get("units", ""),
                "long_name": attrs.get("long_name", ""),
                "builder": where,
            }
        )

    def from_static(name: str) -> dict[str, str]:
        f = static.get(name, {})
        return {"units": f.get("units", "") or "1", "long_name": f.get("long_name", name)}

    for func in tree.body:
        if not isinstance(func, ast.FunctionDef):
            continue
        names: dict[str, ast.AST] = {}
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                t = node.targets[0]
                if isinstance(t, ast.Name):
                    names[t.id] = node.value
        assigns = sorted(
            (n for n in ast.walk(func) if isinstance(n, ast.Assign) and len(n.targets) == 1),
            key=lambda n: n.lineno,
        )
        for node in assigns:
            target, value = node.targets[0], node.value
            if not (
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Name)
                and target.value.id in ("data", "ds")
                and isinstance(value, ast.Call)
                and ast.get_source_segment(src, value.func) == "xr.Variable"
                and len(value.args) >= 2
            ):
                continue
            dims = _dims_of(value.args[0], names)
            attrs_node = value.args[2] if len(value.args) > 2 else None
            key = target.slice
            loop_names = _loop_names(func, node, src)
            if isinstance(key, ast.Constant):
                if isinstance(attrs_node, ast.Call) and _call_name(attrs_node) == "_attrs":
                    attrs = from_static(str(key.value))
                else:
                    attrs = _attrs_of(attrs_node, src, names) if attrs_node is not None else {}
                add(str(key.value), dims, attrs, func.name)
            elif isinstance(key, ast.Name) and key.id == "name" and "REGIONAL" in loop_names:
                for name in pr.REGIONAL:
                    add(name, dims, from_static(name), func.name)
            elif isinstance(key, ast.Name) and key.id == "k":  # investment-policy flows
                for name, long_name in decisions.POLICY_FLOWS.items():
                    add(name, dims, {"units": "{currency}/year", "long_name": long_name}, func.name)
            elif isinstance(key, ast.JoinedStr):  # e.g. disruption_loss_p{q:02d}
                values = loop_names.get("__values__", ())
                attrs = _attrs_of(attrs_node, src, names) if attrs_node is not None else {}
                for q in values:
                    name = _render(key, src).replace("{q:02d}", f"{q:02d}")
                    filled = {k: v.replace("{q}", str(q)) for k, v in attrs.items()}
                    add(name, dims, filled, func.name)
    return rows


def _call_name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else ""


def _loop_names(func: ast.FunctionDef, target: ast.AST, src: str) -> dict[str, Any]:
    """What the ``for`` loops around ``target`` iterate over: their iterables' source (as
    keys) and, for a loop over a tuple of numbers, those numbers (``__values__``)."""
    out: dict[str, Any] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.For) and any(n is target for n in ast.walk(node)):
            out[ast.get_source_segment(src, node.iter) or ""] = True
            if isinstance(node.iter, ast.Tuple):
                out["__values__"] = tuple(
                    e.value for e in node.iter.elts if isinstance(e, ast.Constant)
                )
    return out


def _table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = [f"`{r[c]}`" if c == "name" else _cell(r.get(c, "")) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_page() -> str:
    """The results reference: the static variable table, then the pathway and risk
    variables."""
    head = textwrap.dedent(
        """\
        # Reference: results

        Generated when the site is built from the code, so it matches it. Units are templates
        filled from the market: `{price}`, `{quantity}` and `{currency}` are the market's
        price, quantity and currency units; `1` is dimensionless. Every variable carries
        `units` (except strings), `long_name` and `description` attributes.

        ## Static results

        The variables of `tp.solve` on a scenario set, from the field table
        `tradepolicy/data/result_fields.csv` (`tradepolicy.results.builder.result_fields()`).

        """
    )
    static = _table(result_rows(), ("name", "dims", "units", "long_name", "description"))
    pathway_head = textwrap.dedent(
        """

        ## Pathway and risk results

        The variables of `tp.solve` on a pathway set (a Dataset with `year`, see the
        [pathways guide](../pathways.md) and the [risk guide](../risk.md)), read from their
        builder `tradepolicy.pathway.results`: `build` writes the yearly variables,
        `_summaries` the present values and the target, `_risk` the events, losses and
        stockpiles (only in a set with `[[risk]]` or a `stockpile_policy`). Project variables
        appear when the set has a project pipeline. Expressions in braces (such as
        `{pset.target_year}`) are filled from the set.

        """
    )
    pathway = _table(pathway_rows(), ("name", "dims", "units", "long_name", "builder"))
    return head + static + pathway_head + pathway


# -- market pages ----------------------------------------------------------------------------
#: where the generated market-file section goes in a hand-written market page
MARKET_MARKER = "<!-- market-file -->"
_ELASTICITY_NAMES = {"supply": "supply ε", "demand": "demand η (absolute)", "substitution": "σ"}


def _qty(x: float) -> str:
    """A quantity as a table cell: whole units with thousands separators, 3 digits if small."""
    return f"{x:,.0f}" if abs(x) >= 100 or x == 0 else f"{x:,.3g}"


def _share(part: float, whole: float) -> str:
    """``part`` as a percentage of ``whole`` (``–`` for none, ``<0.1%`` for a trace)."""
    if whole <= 0 or part <= 0:
        return "–"
    pct = 100 * part / whole
    return f"{pct:.1f}%" if pct >= 0.05 else "<0.1%"


@functools.cache
def _shipped_chains() -> tuple[tuple[str, Any], ...]:
    """``(chain id, Chain)`` of every shipped chain, loaded once."""
    from tradepolicy.chain import load_chain
    from tradepolicy.market import list_chains

    return tuple((cid, load_chain(cid)) for cid in list_chains())


def _chains_of(market_id: str) -> list[tuple[str, Any]]:
    """The shipped chains that have ``market_id`` as a stage: ``(chain id, Chain)``."""
    return [(cid, chain) for cid, chain in _shipped_chains() if market_id in chain.stage_ids]


def market_file_section(market: Any) -> str:
    """The generated section of a market page: the market file's data as loaded.

    Base year, units and calibration id; production and consumption by region with shares
    and each region's largest foreign supplier (seed shares applied, as the model starts
    from them); base prices, base tariffs and export taxes; the elasticities with their
    standard errors and basis at both horizons; the links of the chains the market is a stage
    of; and the market file's ``[sources]``, where every figure's public source is given.

    Parameters
    ----------
    market : Market
        A loaded market (:func:`tradepolicy.load_market`).

    Returns
    -------
    str
        Markdown, starting with a ``## The market file`` heading.
    """
    from tradepolicy import regions as region_table

    spec, unit, regions = market.spec, market.quantity_unit, market.regions
    prod, cons, flows = market.production, market.consumption, market.flows
    world = float(prod.sum())
    file = f"models/equilibrium/{market.id}.toml"
    lines = [
        "## The market file",
        "",
        f"*Generated from `{file}` when this site was built (calibration id "
        f"`{spec.calibration_id or 'none'}`), so these figures are the model's own; the "
        "sources of every figure follow the tables.*",
        "",
        f"**{spec.commodity}**, stage *{spec.stage}*, base year {spec.base_year}. "
        f"Quantities in {unit} per year, prices in {market.price_unit}.",
        "",
        f"### Base data as loaded ({unit} per year, {spec.base_year})",
        "",
        "Shares are of world output; the largest foreign supplier is the origin, other than the "
        "region itself, with the largest share of the region's use.",
        "",
        "| region | production | share | consumption | share | largest foreign supplier |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(regions):
        foreign = [(float(flows[j, i]), regions[j]) for j in range(len(regions)) if j != i]
        top_q, top = max(foreign) if foreign else (0.0, "")
        supplier = f"{top} {_share(top_q, float(cons[i]))}" if top_q > 0 else "–"
        lines.append(
            f"| `{r}` {_cell(region_table.name(r))} | {_qty(float(prod[i]))} "
            f"| {_share(float(prod[i]), world)} | {_qty(float(cons[i]))} "
            f"| {_share(float(cons[i]), world)} | {supplier} |"
        )
    lines.append(f"| **world** | **{_qty(world)}** | | **{_qty(float(cons.sum()))}** | | |")
    prices = market.base_price
    if np.all(prices == prices[0]):
        lines += ["", f"**Base price**, every origin: {prices[0]:,.6g} {market.price_unit}."]
    else:
        lines += [
            "",
            f"**Base prices** ({market.price_unit}, by origin): "
            + "; ".join(f"{r} {p:,.6g}" for r, p in zip(regions, prices, strict=True))
            + ".",
        ]
    for label, matrix in (
        ("Base tariffs", market.base_tariff),
        ("Base export taxes", market.base_export_tax),
    ):
        pairs = [
            f"{regions[a]} → {regions[b]} {100 * matrix[a, b]:g}%"
            for a in range(len(regions))
            for b in range(len(regions))
            if matrix[a, b]
        ]
        lines += ["", f"**{label}** (ad valorem): " + ("; ".join(pairs) if pairs else "none.")]
    lines += [
        "",
        "### Elasticities",
        "",
        "| horizon | parameter | region | value | std. error | basis |",
        "|---|---|---|---|---|---|",
    ]
    horizons = [("medium run", spec.elasticities, spec.elasticity_se, spec.elasticity_basis)]
    if spec.elasticities.short_run is not None:
        horizons.append(
            (
                "short run",
                spec.elasticities.short_run,
                spec.elasticity_se.short_run,
                spec.elasticity_basis.short_run,
            )
        )
    for horizon, values, ses, bases in horizons:
        for kind in ("supply", "demand", "substitution"):
            table = getattr(values, kind, None)
            if not table:
                continue
            se_table = getattr(ses, kind, None) or {} if ses is not None else {}
            basis_table = getattr(bases, kind, None) or {} if bases is not None else {}
            for key, value in table.items():
                se = se_table.get(key)
                lines.append(
                    f"| {horizon} | {_ELASTICITY_NAMES[kind]} | {key} | {value:g} "
                    f"| {'–' if se is None else f'{se:.2g}'} "
                    f"| {_cell(basis_table.get(key, '–'))} |"
                )
    if market.horizon == "medium" and spec.elasticities.short_run is not None:
        lines += [
            "",
            "A short-run kind not listed keeps its medium-run value "
            "(horizons: [The model](../model.md)).",
        ]
    for cid, chain in _chains_of(market.id):
        lines += [
            "",
            f"### Stage of the `{cid}` chain",
            "",
            f"Stages, upstream first: {', '.join(f'`{s}`' for s in chain.stage_ids)} "
            "([Value chains](../chains.md)). Input coefficients of this stage's links "
            "(units of the input per unit of the output):",
            "",
            "| input | output | coefficient | range | source |",
            "|---|---|---|---|---|",
        ]
        for link in chain.spec.link:
            if market.id not in (link.input, link.output):
                continue
            rng = f"{link.low:g}–{link.high:g}" if link.low is not None else "–"
            lines.append(
                f"| `{link.input}` | `{link.output}` | {link.coefficient:g} | {rng} "
                f"| {_cell(link.source or '')} |"
            )
    if spec.sources:
        lines += ["", "### Sources (the market file's `[sources]`)", ""]
        for key, text in spec.sources.items():
            if key == "generated":
                continue
            lines += [f"`{key}`", f":   {_cell(text)}", ""]
    return "\n".join(lines).rstrip() + "\n"


def market_page(market: Any, text: str | None) -> str:
    """The market's documentation page: its hand-written text with the generated section.

    Parameters
    ----------
    market : Market
        A loaded market.
    text : str or None
        The hand-written page (``docs/markets/<id>.md``) with :data:`MARKET_MARKER` where the
        generated section goes; None when the market has no page, which then consists of its
        title, its file's description and the generated section.

    Returns
    -------
    str
        The page's Markdown.

    Raises
    ------
    ValueError
        ``text`` has no marker, or more than one.
    """
    section = market_file_section(market)
    if text is None:
        return (
            f"# Market: {market.spec.commodity} (`{market.id}`)\n\n"
            f"{market.spec.description}\n\n{section}"
        )
    if text.count(MARKET_MARKER) != 1:
        raise ValueError(
            f"docs/markets/{market.id}.md: put the line {MARKET_MARKER} once where the "
            f"generated market-file section goes (found {text.count(MARKET_MARKER)})"
        )
    return text.replace(MARKET_MARKER, section.rstrip("\n"))


def markets_index_page() -> str:
    """The markets index: every shipped market and every chain's stages, from the files.

    Returns
    -------
    str
        Markdown with one table of the markets and one of the chains' stages.
    """
    from tradepolicy.market import list_markets, load_market

    stages = {s for _cid, chain in _shipped_chains() for s in chain.stage_ids}
    lines = [
        "# Markets",
        "",
        "Each shipped market is one commodity at one stage, calibrated to its base year. Every",
        "page is built from the market file and its calibration estimates when this site is",
        "built; every figure carries its public source.",
        "",
        "| market | id | stage | base year | quantity unit |",
        "|---|---|---|---|---|",
    ]
    for mid in list_markets():
        if mid in stages:
            continue
        m = load_market(mid)
        lines.append(
            f"| [{_cell(m.commodity)}]({mid}.md) | `{mid}` | {m.spec.stage} "
            f"| {m.spec.base_year} | {m.quantity_unit} |"
        )
    lines += [
        "",
        "Stages of value chains ([Value chains](../chains.md)), upstream first:",
        "",
        "| chain | stage | id | base year | quantity unit |",
        "|---|---|---|---|---|",
    ]
    for cid, chain in _shipped_chains():
        for m in chain.stages:
            lines.append(
                f"| `{cid}` | [{_cell(m.commodity)}]({m.id}.md) | `{m.id}` "
                f"| {m.spec.base_year} | {m.quantity_unit} |"
            )
    return "\n".join(lines) + "\n"
