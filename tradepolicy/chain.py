"""Value chains: stage markets linked by input coefficients, solved as one system.

A chain file (docs/chains.md) lists stage markets, upstream first, and the links between
them::

    id = "ree_magnets"
    kind = "chain"
    stages = ["ree_ndpr_oxide", "ree_ndpr_metal", "ree_dytb_oxide", "ree_ndfeb_magnet"]

    [[link]]
    input = "ree_ndpr_oxide"
    output = "ree_ndpr_metal"
    coefficient = 1.2        # t of input per t of output
    low = 1.176              # documented range (Monte Carlo draws)
    high = 1.22
    source = "..."

The chain's regions are every stage's (a region a stage does not list is an idle node of
that stage: it neither makes nor uses it). The solver sees one stacked market of
``stages × regions`` nodes whose Armington nests stay within a stage (no flow between stages)
and whose nodes are coupled by the matrix ``C`` of input coefficients: makers of a stage in
region o buy ``a · S`` of each input stage's composite in o and earn the value added
``v = p̃ − Σ a P``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from tradepolicy._files import exists, resolve_reference
from tradepolicy._validation import MAX_TEXT, Float, problems_from_validation_error
from tradepolicy.errors import InputError
from tradepolicy.market import Market, definition_hash, load_market

__all__ = ["Chain", "ChainSpec", "LinkSpec", "chain_attrs", "load_chain", "stack_instruments"]

MarketId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
#: a relative rounding margin for the calibration rules (shares of use and price)
_RULE_TOL = 1e-9


class LinkSpec(BaseModel):
    """One input link: ``coefficient`` units of ``input`` per unit of ``output``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    input: MarketId
    output: MarketId
    coefficient: Annotated[Float, Field(ge=0.0, le=1e6)]
    low: Annotated[Float, Field(ge=0.0)] | None = None
    high: Annotated[Float, Field(ge=0.0)] | None = None
    source: Text = ""


class ChainSpec(BaseModel):
    """Schema of a chain file (docs/chains.md)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: MarketId
    kind: Literal["chain"]
    description: Text = ""
    stages: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=1000)]],
        Field(min_length=1, max_length=20),
    ]
    link: list[LinkSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Chain:
    """A validated chain: its stage markets and the coefficient matrix that links them.

    Attributes
    ----------
    spec : ChainSpec
        The validated file contents.
    stages : tuple of Market
        The stage markets, upstream first.
    path : Path or None
        Where the chain was read from.
    """

    spec: ChainSpec
    stages: tuple[Market, ...]
    path: Path | None = None
    kind: str = field(default="chain", init=False)

    # -- labels ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The chain's id (its file's ``id``)."""
        return self.spec.id

    @property
    def description(self) -> str:
        """The chain's description, as written in its file."""
        return self.spec.description

    @property
    def commodity(self) -> str:
        """The stages' commodities joined by arrows, upstream first."""
        return " → ".join(m.commodity for m in self.stages)

    @property
    def stage_ids(self) -> tuple[str, ...]:
        """The stages' market ids, upstream first."""
        return tuple(m.id for m in self.stages)

    @cached_property
    def regions(self) -> tuple[str, ...]:
        """Every stage's regions, in first-seen order with aggregates (``ROW``) last."""
        from tradepolicy import regions as region_table

        seen = list(dict.fromkeys(r for m in self.stages for r in m.regions))
        return tuple(sorted(seen, key=lambda r: region_table.is_aggregate(r)))

    @property
    def n(self) -> int:
        """The number of regions of the chain (:attr:`regions`)."""
        return len(self.regions)

    @cached_property
    def positions(self) -> tuple[np.ndarray, ...]:
        """Per stage, the positions of its regions among the chain's :attr:`regions`."""
        at = {r: i for i, r in enumerate(self.regions)}
        return tuple(np.array([at[r] for r in m.regions], dtype=int) for m in self.stages)

    def stage(self, stage_id: str) -> Market:
        """Return one stage's market.

        Parameters
        ----------
        stage_id : str
            The stage's market id (one of :attr:`stage_ids`).

        Returns
        -------
        Market
            The stage market.

        Raises
        ------
        KeyError
            The chain has no stage ``stage_id`` (the message lists its stages).
        """
        for m in self.stages:
            if m.id == stage_id:
                return m
        raise KeyError(
            f"no stage {stage_id!r} in chain {self.id!r} (stages: {', '.join(self.stage_ids)})"
        )

    # -- horizons (docs/model.md, "Horizons") ---------------------------------------------
    @property
    def horizon(self) -> str:
        """The horizon of the stages' elasticities (``"medium"`` unless :meth:`at_horizon`)."""
        return self.stages[0].horizon

    @property
    def has_short_run(self) -> bool:
        """Whether every stage market gives short-run elasticities."""
        return all(m.has_short_run for m in self.stages)

    def at_horizon(self, horizon: str) -> Chain:
        """Return the chain with every stage at ``horizon`` (see :meth:`Market.at_horizon`).

        The links and base data are unchanged.

        Parameters
        ----------
        horizon : {"short", "medium"}
            The horizon of every stage's elasticities.

        Returns
        -------
        Chain
            The chain at ``horizon`` (itself if it already is).

        Raises
        ------
        InputError
            A stage has no short-run elasticities (the error names its market file).
        """
        if horizon == self.horizon:
            return self
        return replace(self, stages=tuple(m.at_horizon(horizon) for m in self.stages))

    def stage_index(self, stage_id: str) -> int:
        """Return the position of a stage among the stages.

        Parameters
        ----------
        stage_id : str
            The stage's market id.

        Returns
        -------
        int
            Its position, upstream first.

        Raises
        ------
        ValueError
            The chain has no stage ``stage_id``.
        """
        return self.stage_ids.index(stage_id)

    def nodes(self, s: int) -> np.ndarray:
        """Return the positions of a stage's nodes among the stacked nodes.

        Parameters
        ----------
        s : int
            The stage's position (:meth:`stage_index`).

        Returns
        -------
        ndarray of int
            The ``n`` node positions of stage ``s`` (one per chain region).
        """
        return np.arange(s * self.n, (s + 1) * self.n)

    def input_files(self) -> list[Path]:
        """Return the files the chain was read from.

        Returns
        -------
        list of Path
            The chain file, then every stage market's files (:meth:`Market.input_files`).
        """
        files = [self.path] if self.path is not None else []
        for m in self.stages:
            files.extend(m.input_files())
        return files

    # -- links ----------------------------------------------------------------------------
    def coefficients(self, values: np.ndarray | None = None) -> np.ndarray:
        """Return the node coefficient matrix ``C`` (nodes × nodes).

        ``C[(i,o), (s,o)] = a`` for a link from stage i to stage s, in every region o.

        Parameters
        ----------
        values : ndarray, optional
            The links' coefficients in the order of ``[[link]]`` instead of the point values:
            ``(L,)``, or one row per draw ``(n, L)``.

        Returns
        -------
        ndarray
            ``C``, ``(nodes, nodes)``, or ``(n, nodes, nodes)`` for ``values`` of shape
            ``(n, L)``.
        """
        values = self.link_values("coefficient") if values is None else np.asarray(values)
        NS = len(self.stages) * self.n
        C = np.zeros((*values.shape[:-1], NS, NS))
        for k, link in enumerate(self.spec.link):
            i, s = self.stage_index(link.input), self.stage_index(link.output)
            C[..., self.nodes(i), self.nodes(s)] = values[..., k, None]
        return C

    def link_values(self, end: str = "coefficient") -> np.ndarray:
        """Return each link's ``coefficient``, or its ``low`` or ``high`` end.

        The coefficient is used where no range is given.

        Parameters
        ----------
        end : {"coefficient", "low", "high"}
            Which value of each link.

        Returns
        -------
        ndarray
            One value per link ``(L,)``, in the order of ``[[link]]``.
        """
        return np.array(
            [
                link.coefficient if getattr(link, end) is None else getattr(link, end)
                for link in self.spec.link
            ],
            dtype=float,
        )

    def link_draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` sets of the links' coefficients ``(n, L)``.

        Each is triangular on ``[low, high]`` with its mode at the point value (a link without a
        range keeps its value).

        Parameters
        ----------
        n : int
            The number of draws.
        rng : numpy.random.Generator
            The random number generator.

        Returns
        -------
        ndarray
            The drawn coefficients ``(n, L)``, in the order of ``[[link]]``.
        """
        point, lo, hi = (self.link_values(end) for end in ("coefficient", "low", "high"))
        out = np.empty((n, len(point)))
        for k in range(len(point)):
            out[:, k] = rng.triangular(lo[k], point[k], hi[k], n) if hi[k] > lo[k] else point[k]
        return out

    @cached_property
    def calibration(self):  # -> Calibration (import cycle avoided)
        """The stacked calibration of every stage, linked by the chain's coefficients."""
        from tradepolicy.model.levels import Calibration

        N, S = self.n, len(self.stages)
        NS = N * S
        p0, eps, eta, sigma = (np.zeros(NS) for _ in range(4))
        X0, t0, x0 = (np.zeros((NS, NS)) for _ in range(3))
        for s, (m, pos) in enumerate(zip(self.stages, self.positions, strict=True)):
            c = m.calibration
            at = s * N + pos
            # a region absent from a stage is an idle node (no output, no use): its
            # parameters are placeholders the equations never read
            for arr, val in ((p0, c.p0), (eps, c.eps), (eta, c.eta), (sigma, c.sigma)):
                arr[s * N : (s + 1) * N] = np.median(val)
                arr[at] = val
            ix = np.ix_(at, at)
            X0[ix], t0[ix], x0[ix] = c.X0, c.t0, c.x0
        return Calibration(
            regions=tuple(f"{m.id}:{r}" for m in self.stages for r in self.regions),
            p0=p0,
            X0=X0,
            t0=t0,
            x0=x0,
            eps=eps,
            eta=eta,
            sigma=sigma,
            C=self.coefficients(),
        )

    # -- provenance -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the chain's definition as JSON-able data.

        Returns
        -------
        dict
            The chain file's contents with every stage market resolved (``stage_markets``:
            ``{id: Market.to_dict()}``).
        """
        d = self.spec.model_dump(mode="json", exclude_none=True)
        d["stages"] = [m.id for m in self.stages]
        d["stage_markets"] = {m.id: m.to_dict() for m in self.stages}
        return d

    @cached_property
    def data_hash(self) -> str:
        """SHA-256 of the chain file with its stage markets resolved."""
        return definition_hash(self.to_dict())

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: dict[str, Any], path: Path | None = None, source: str | None = None
    ) -> Chain:
        """Validate a chain definition (as read from TOML) and load its stages.

        Parameters
        ----------
        data : dict
            The chain file's contents (``kind = "chain"``, ``stages``, ``[[link]]``).
        path : Path, optional
            Where the file was read from: stage references resolve against its folder.
        source : str, optional
            The name errors cite (default: ``path``, else ``"<chain>"``).

        Returns
        -------
        Chain
            The validated chain.

        Raises
        ------
        InputError
            A field is invalid, a stage market cannot be loaded, or the links do not fit the
            stages; the error names the file and the field.
        """
        source = source or (str(path) if path else "<chain>")
        try:
            spec = ChainSpec.model_validate(data)
        except ValidationError as exc:
            raise InputError(source, problems_from_validation_error(exc, ChainSpec)) from None
        stages = [
            _load_stage(ref, path, f"stages[{k}]", source) for k, ref in enumerate(spec.stages)
        ]
        return cls._checked(spec, stages, path, source)

    @classmethod
    def from_markets(
        cls,
        chain_id: str,
        stages: list[Market],
        links: list[dict[str, Any]],
        description: str = "",
    ) -> Chain:
        """Build a chain of markets in code.

        Parameters
        ----------
        chain_id : str
            The chain's id.
        stages : list of Market
            The stage markets, upstream first.
        links : list of dict
            The links, each as a ``[[link]]`` table of a chain file (``input``, ``output``,
            ``coefficient``, optional ``low`` and ``high``).
        description : str, optional
            The chain's description.

        Returns
        -------
        Chain
            The validated chain.

        Raises
        ------
        InputError
            A link is invalid or does not fit the stages.
        """
        data = {
            "id": chain_id,
            "kind": "chain",
            "description": description,
            "stages": [m.id for m in stages],
            "link": links,
        }
        try:
            spec = ChainSpec.model_validate(data)
        except ValidationError as exc:
            raise InputError("<chain>", problems_from_validation_error(exc, ChainSpec)) from None
        return cls._checked(spec, list(stages), None, "<chain>")

    @classmethod
    def _checked(
        cls, spec: ChainSpec, stages: list[Market], path: Path | None, source: str
    ) -> Chain:
        chain = cls(spec=spec, stages=tuple(stages), path=path)
        problems = chain._structure_problems()
        if not problems:
            problems = chain._calibration_problems()
        high = None if problems else chain.coefficients(chain.link_values("high"))
        if high is not None and high.any():
            # both rules get harder as coefficients grow: every draw must satisfy them
            problems = [
                (
                    f,
                    f"{msg} (with every coefficient at the high end of its range, which "
                    "Monte Carlo draws may reach)",
                )
                for f, msg in chain._calibration_problems(high)
            ]
        if problems:
            raise InputError(source, problems)
        return chain

    @property
    def has_uncertainty(self) -> bool:
        """Whether a draw can differ from the point values (elasticities or coefficients)."""
        ranged = any(
            (link.low is not None and link.low < link.coefficient)
            or (link.high is not None and link.high > link.coefficient)
            for link in self.spec.link
        )
        return ranged or any(m.has_uncertainty for m in self.stages)

    def _structure_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        ids = self.stage_ids
        seen: set[str] = set()
        for k, sid in enumerate(ids):
            if sid in seen:
                problems.append((f"stages[{k}]", f"stage {sid!r} is listed twice"))
            seen.add(sid)
        first = self.stages[0]
        for k, m in enumerate(self.stages[1:], start=1):
            if (m.quantity_unit, m.currency) != (first.quantity_unit, first.currency):
                problems.append(
                    (
                        f"stages[{k}]",
                        f"stage {m.id!r} counts in {m.quantity_unit} and {m.currency}, stage "
                        f"{first.id!r} in {first.quantity_unit} and {first.currency}; every stage "
                        "of a chain must use the same quantity unit and currency",
                    )
                )
        pairs: set[tuple[str, str]] = set()
        for k, link in enumerate(self.spec.link):
            where = f"link[{k}]"
            for name in ("input", "output"):
                value = getattr(link, name)
                if value not in ids:
                    problems.append(
                        (f"{where}.{name}", f"{value!r} is not a stage (stages: {', '.join(ids)})")
                    )
            if link.input in ids and link.output in ids:
                if ids.index(link.input) >= ids.index(link.output):
                    problems.append(
                        (
                            where,
                            f"{link.input!r} must come before {link.output!r} "
                            "in `stages` (inputs upstream of their outputs)",
                        )
                    )
            if (link.input, link.output) in pairs:
                problems.append((where, f"link {link.input} → {link.output} is given twice"))
            pairs.add((link.input, link.output))
            lo = link.low if link.low is not None else link.coefficient
            hi = link.high if link.high is not None else link.coefficient
            if not lo <= link.coefficient <= hi:
                problems.append(
                    (
                        f"{where}.coefficient",
                        f"{link.coefficient:g} is outside its range [{lo:g}, {hi:g}] "
                        "(low ≤ coefficient ≤ high)",
                    )
                )
        return problems

    def _link_field(self, input: str | None = None, output: str | None = None) -> str:
        """``link[k].coefficient`` of the links into (or out of) a stage, for messages."""
        ks = [
            str(k)
            for k, link in enumerate(self.spec.link)
            if input in (None, link.input) and output in (None, link.output)
        ]
        return f"link[{'|'.join(ks)}].coefficient" if ks else "link"

    def _calibration_problems(self, C: np.ndarray | None = None) -> list[tuple[str, str]]:
        """Check the chain calibration rules (docs/chains.md).

        Base final demand ≥ 0 and base value added > 0 wherever a region makes a stage that buys
        inputs.
        """
        from tradepolicy.model.levels import Calibration

        base = self.calibration
        if C is None:
            C = base.C
        cal = Calibration(
            regions=base.regions,
            p0=base.p0,
            X0=base.X0,
            t0=base.t0,
            x0=base.x0,
            eps=base.eps,
            eta=base.eta,
            sigma=base.sigma,
            C=C,
        )
        N = self.n
        problems = []
        derived = C @ cal.S0
        short = cal.D0 - derived
        for node in np.flatnonzero(short < -_RULE_TOL * np.maximum(cal.D0, derived)):
            s, o = divmod(int(node), N)
            stage, region = self.stage_ids[s], self.regions[o]
            makers = [self.stage_ids[j // N] for j in np.flatnonzero(C[node] > 0) if cal.S0[j] > 0]
            problems.append(
                (
                    self._link_field(input=stage),
                    f"{region} uses {cal.D0[node]:.6g} {self.stages[s].quantity_unit}/yr of "
                    f"{stage!r} but its makers of {', '.join(repr(m) for m in makers)} need "
                    f"{derived[node]:.6g} as inputs (coefficient × their output); base use must "
                    f"be at least what the region's makers need (final demand ≥ 0)",
                )
            )
        cost = cal.c0
        for node in np.flatnonzero(cal.producer & (C.sum(axis=0) > 0)):
            if cal.v0[node] > _RULE_TOL * cal.p0[node]:
                continue
            s, o = divmod(int(node), N)
            problems.append(
                (
                    self._link_field(output=self.stage_ids[s]),
                    f"{self.regions[o]} makes {self.stage_ids[s]!r} at a base price of "
                    f"{cal.p0[node]:.6g} {self.stages[s].price_unit} but its inputs cost "
                    f"{cost[node]:.6g} per unit at base prices; the value added "
                    f"{cal.v0[node]:.6g} must be positive",
                )
            )
        return problems


def _load_stage(ref: str, chain_path: Path | None, field_name: str, source: str) -> Market:
    looks_like_path = ref.endswith(".toml") or any(c in ref for c in "/\\")
    if looks_like_path:
        candidate = resolve_reference(ref, chain_path, field_name, source)
        if not exists(candidate):
            raise InputError(
                source, [(field_name, f"stage market file {candidate} does not exist")]
            )
        ref = str(candidate)
    try:
        market = load_market(ref)
    except InputError as exc:
        raise InputError(source, [(field_name, f"stage {ref!r}: {exc}")]) from None
    if isinstance(market, Chain):
        raise InputError(source, [(field_name, f"{ref!r} is a chain; a stage must be a market")])
    return market


def load_chain(name_or_path: str | Path) -> Chain:
    """Load a chain by shipped id (``"ree_magnets"``) or path.

    Parameters
    ----------
    name_or_path : str or Path
        A shipped chain id (:func:`~tradepolicy.market.list_chains`) or the path of a chain
        TOML file.

    Returns
    -------
    Chain
        The validated chain with its stage markets.

    Raises
    ------
    InputError
        No shipped chain has that id, the file is a market rather than a chain, or it is not
        valid; the error names the file and the field.

    Examples
    --------
    >>> import tradepolicy as tp
    >>> tp.load_chain("ree_magnets").stage_ids[:2]
    ('ree_ndpr_oxide', 'ree_ndpr_metal')
    """
    out = load_market(name_or_path)
    if not isinstance(out, Chain):
        raise InputError(str(name_or_path), [("kind", 'a market, not a chain (kind = "chain")')])
    return out


def stack_instruments(parts: list, positions: tuple[np.ndarray, ...], n: int):
    """One stacked :class:`Instruments` from each stage's (the same scenarios).

    ``positions[s]``: where stage s's regions sit among the chain's ``n`` regions.

    Wedges sit on the diagonal blocks (nothing is traded between stages); complementarity
    pairs follow stage by stage (stage s's pairs at ``offsets[s]:offsets[s+1]``), their
    cells moved to the stage's block. Returns the instruments and the pair offsets.
    """
    from tradepolicy.model.instruments import Instruments

    S = len(parts)
    B = parts[0].B
    NS = n * S

    at = [s * n + pos for s, pos in enumerate(positions)]

    def diag(name: str, off: float | bool) -> np.ndarray:
        first = getattr(parts[0], name)
        out = np.full((B, NS, NS), off, dtype=first.dtype)
        for s, inst in enumerate(parts):
            out[:, at[s][:, None], at[s][None, :]] = getattr(inst, name)
        return out

    def nodes(name: str, idle: float) -> np.ndarray:
        first = getattr(parts[0], name)
        out = np.full((B, NS), idle, dtype=first.dtype)
        for s, inst in enumerate(parts):
            out[:, at[s]] = getattr(inst, name)
        return out

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(inst, name) for inst in parts], axis=1)

    offsets = np.cumsum([0] + [inst.K for inst in parts])
    M = max([inst.cell.shape[2] for inst in parts] + [0])
    K = int(offsets[-1])

    def pad(a: np.ndarray, fill: float) -> np.ndarray:
        if a.shape[2] == M:
            return a
        out = np.full((a.shape[0], a.shape[1], M), fill, dtype=a.dtype)
        out[:, :, : a.shape[2]] = a
        return out

    cells, wedges, wcoef, gcoef = [], [], [], []
    for s, inst in enumerate(parts):
        ns = len(positions[s])
        o, d = at[s][inst.cell // ns], at[s][inst.cell % ns]
        cells.append(pad((o * NS + d).astype(np.int32), 0))
        wedges.append(pad(inst.wedge, 2))
        wcoef.append(pad(inst.wedge_coef, 0.0))
        gcoef.append(pad(inst.g_coef, 0.0))
    if K:
        cell = np.concatenate(cells, axis=1)
        wedge = np.concatenate(wedges, axis=1)
        wedge_coef = np.concatenate(wcoef, axis=1)
        g_coef = np.concatenate(gcoef, axis=1)
        real = (wedge_coef != 0) | (g_coef != 0)
        cell = np.where(real, cell, 0).astype(np.int32)
        # slot: the cell's rank among the cells any pair of the scenario uses
        used = np.zeros((B, NS * NS), dtype=bool)
        bb = np.broadcast_to(np.arange(B)[:, None, None], cell.shape)
        used[bb[real], cell[real]] = True
        rank = np.cumsum(used, axis=1, dtype=np.int32) - 1
        slot = np.where(real, rank[bb, cell], 0).astype(np.int32)
    else:
        cell = slot = np.zeros((B, 0, 0), dtype=np.int32)
        wedge = np.zeros((B, 0, 0), dtype=np.int8)
        wedge_coef = g_coef = np.zeros((B, 0, 0))
    lte = None
    if any(inst.levy_to_exporter is not None for inst in parts):
        lte = np.zeros((B, NS, NS), dtype=bool)
        for s, inst in enumerate(parts):
            if inst.levy_to_exporter is not None:
                lte[:, at[s][:, None], at[s][None, :]] = inst.levy_to_exporter
    labels = [
        [
            lab
            for inst in parts
            for lab in (inst.pair_labels[b] if inst.pair_labels else [""] * inst.K)
        ]
        for b in range(B)
    ]
    infeasible = []
    for b in range(B):
        why = [
            f"stage {s}: {inst.infeasible[b]}"
            for s, inst in enumerate(parts)
            if inst.infeasible and inst.infeasible[b]
        ]
        infeasible.append("; ".join(why))
    return Instruments(
        export_tax=diag("export_tax", 0.0),
        tariff=diag("tariff", 0.0),
        supply_mult=nodes("supply_mult", 1.0),
        demand_mult=nodes("demand_mult", 1.0),
        floor=diag("floor", 0.0),
        levy_cap=diag("levy_cap", np.inf),
        available=diag("available", True),
        support_strike=nodes("support_strike", 0.0),
        support_share=nodes("support_share", 0.0),
        support_upper=nodes("support_upper", np.inf),
        support_volume=nodes("support_volume", np.inf),
        variety_purchase=nodes("variety_purchase", 0.0),
        composite_purchase=nodes("composite_purchase", 0.0),
        variety_weight=nodes("variety_weight", 1.0),
        lam_lo=cat("lam_lo"),
        lam_hi=cat("lam_hi"),
        lam_scale=cat("lam_scale"),
        cell=cell,
        slot=slot,
        wedge=wedge,
        wedge_coef=wedge_coef,
        g0=cat("g0"),
        g_coef=g_coef,
        g_scale=cat("g_scale"),
        pair_labels=labels,
        levy_to_exporter=lte,
        infeasible=infeasible,
    ), offsets


def chain_attrs(chain: Chain) -> dict[str, str]:
    """Global attributes of a chain's results: its id, stages and links."""
    links = [
        {
            "input": k.input,
            "output": k.output,
            "coefficient": k.coefficient,
            **({"low": k.low} if k.low is not None else {}),
            **({"high": k.high} if k.high is not None else {}),
        }
        for k in chain.spec.link
    ]
    return {
        "chain": chain.id,
        "chain_stages": " ".join(chain.stage_ids),
        "chain_links": json.dumps(links, sort_keys=True),
    }
