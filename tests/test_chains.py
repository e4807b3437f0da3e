"""Value chains (docs/chains.md): stages linked by input coefficients, solved as one system."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from chains import TOY_CHAIN_TOML, TOY_MAGNET, every_measure_chain, toy_chain
from toy import TOY_MARKET, to_toml

import tradepolicy as tp
from tradepolicy.chain import Chain
from tradepolicy.measures.base import WELFARE_ENTRIES
from tradepolicy.model.levels import evaluate, initial_guess
from tradepolicy.scenario import ScenarioSet
from tradepolicy.solver.newton import solve_batch

FLOOR = {
    "type": "price_floor",
    "stage": "toy",
    "importers": ["USA", "EU"],
    "floor": 60000.0,
    "exempt": ["AUS"],
}
MAGNET_TARIFF = {
    "type": "tariff",
    "stage": "toy_magnet",
    "importers": ["USA", "EU"],
    "exporters": ["CHN"],
    "rate": 0.25,
}
SHOCK = {"type": "supply_shock", "stage": "toy", "region": "CHN", "fraction": 0.3}
SUBSIDY = {
    "type": "price_gap_subsidy",
    "stage": "toy_magnet",
    "producers": ["USA"],
    "strike": 120000.0,
    "payers": {"USA": 1.0},
}


def scenarios(*measures_per_scenario: list[dict]) -> list[tp.Scenario]:
    return [
        tp.Scenario(name=f"s{i}", measure=list(ms))  # type: ignore[call-arg]
        for i, ms in enumerate(measures_per_scenario)
    ]


def solve(chain: Chain, *measures_per_scenario: list[dict], **kw) -> object:
    return tp.solve(ScenarioSet(market=chain, scenarios=scenarios(*measures_per_scenario)), **kw)


NUMERIC = (
    "producer_price",
    "consumer_price",
    "production",
    "consumption",
    "trade_flow",
    "welfare_change",
    *WELFARE_ENTRIES,
    "bloc_dependency",
)


# -- replication and limits -------------------------------------------------------------------
def test_every_stage_replicates_its_base() -> None:
    chain = toy_chain()
    ds = solve(chain, [MAGNET_TARIFF]).sel(scenario="baseline")
    for market in chain.stages:
        st = ds.sel(
            stage=market.id,
            region=list(market.regions),
            exporter=list(market.regions),
            importer=list(market.regions),
        )
        np.testing.assert_allclose(st.trade_flow.values, market.flows, rtol=1e-13, atol=1e-9)
        prod = market.production > 0
        np.testing.assert_allclose(
            st.producer_price.values[prod], market.base_price[prod], rtol=1e-13
        )
        assert float(np.abs(st.welfare_change).max()) == 0.0


def test_zero_coefficients_give_the_stages_solved_alone() -> None:
    chain = toy_chain(coefficient=0.0)
    ms = [[FLOOR, MAGNET_TARIFF], [SHOCK, SUBSIDY]]
    ds = solve(chain, *ms)
    for market in chain.stages:
        own = [[m for m in s if m["stage"] == market.id] for s in ms]
        alone = tp.solve(scenarios(*own), market).isel(commodity=0)
        st = ds.sel(
            stage=market.id,
            region=list(market.regions),
            exporter=list(market.regions),
            importer=list(market.regions),
        )
        for name in NUMERIC:
            np.testing.assert_allclose(
                st[name].values, alone[name].values, rtol=1e-10, atol=1e-6, err_msg=name
            )


def test_a_one_stage_chain_equals_its_market() -> None:
    market = tp.Market.from_dict(copy.deepcopy(TOY_MARKET))
    chain = Chain.from_markets("one", [market], [])
    plain = [{k: v for k, v in FLOOR.items() if k != "stage"}, {**SHOCK}]
    ds = solve(chain, plain[:1], plain[1:]).isel(stage=0)
    ref = tp.solve(scenarios(plain[:1], plain[1:]), market).isel(commodity=0)
    for name in (*NUMERIC, "levy_revenue", "iterations"):
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)


def test_small_coefficients_approach_the_stages_alone() -> None:
    """The coupling is continuous: results move by O(a) as a → 0."""
    gaps = []
    for a in (1e-3, 1e-4):
        ds = solve(toy_chain(coefficient=a), [SHOCK]).sel(scenario="s0", stage="toy_magnet")
        ref = solve(toy_chain(coefficient=0.0), [SHOCK]).sel(scenario="s0", stage="toy_magnet")
        gaps.append(float(np.nanmax(np.abs(ds.producer_price / ref.producer_price - 1))))
    assert gaps[1] < gaps[0] / 5 and gaps[1] < 1e-4


# -- economics ----------------------------------------------------------------------------------
def test_an_upstream_shock_passes_downstream_by_the_input_cost_share() -> None:
    """With (nearly) perfectly elastic value added, d ln p_magnet = θ d ln P_oxide, where
    θ = a P_oxide / p_magnet is the input's cost share; with finite elasticity less passes."""
    small = {**SHOCK, "fraction": 0.01}
    for eps, exact in ((100.0, True), (1.5, False)):
        chain = toy_chain(elasticities={**TOY_MAGNET["elasticities"], "supply": {"default": eps}})
        ds = solve(chain, [small])
        up = ds.consumer_price.sel(stage="toy")
        down = ds.producer_price.sel(stage="toy_magnet")
        makers = ["CHN", "USA", "EU"]
        dP = np.log(
            up.sel(scenario="s0", region=makers) / up.sel(scenario="baseline", region=makers)
        )
        dp = np.log(
            down.sel(scenario="s0", region=makers) / down.sel(scenario="baseline", region=makers)
        )
        theta = (
            0.4
            * up.sel(scenario="baseline", region=makers)
            / down.sel(scenario="baseline", region=makers)
        )
        ratio = (dp / (theta * dP)).values
        assert (dP > 0).all()
        if exact:
            np.testing.assert_allclose(ratio, 1.0, rtol=5e-3)
        else:
            assert ((ratio > 0) & (ratio < 0.9)).all(), ratio


def test_an_oxide_floor_raises_member_magnet_costs_and_leaks_to_chinese_magnets() -> None:
    """The floor binds in the EU (the US's 25% tariff already lands Chinese oxide above it):
    EU magnet makers pay more for oxide, make fewer magnets, and Chinese magnets gain."""
    ds = solve(toy_chain(), [FLOOR]).sel(scenario=["baseline", "s0"])
    assert float(ds.levy.sel(stage="toy", scenario="s0", exporter="CHN", importer="EU")) > 0
    cost = ds.input_cost.sel(stage="toy_magnet", region="EU")
    assert cost.sel(scenario="s0") > cost.sel(scenario="baseline")
    out = ds.production.sel(stage="toy_magnet")
    assert out.sel(scenario="s0", region="EU") < out.sel(scenario="baseline", region="EU")
    assert out.sel(scenario="s0", region="CHN") > out.sel(scenario="baseline", region="CHN")
    dep = ds.bloc_dependency.sel(stage="toy_magnet")
    assert dep.sel(scenario="s0") > dep.sel(scenario="baseline")


def test_welfare_adds_up_per_stage_and_producer_surplus_is_on_value_added() -> None:
    chain = toy_chain()
    ds = solve(chain, [FLOOR, MAGNET_TARIFF], [SHOCK])
    parts = sum(ds[k] for k in WELFARE_ENTRIES)
    np.testing.assert_allclose(parts.values, ds.welfare_change.values, rtol=1e-12, atol=1e-6)
    # downstream producer surplus without support: v S / (1 + ε) against the baseline
    mag = ds.sel(stage="toy_magnet", region=["CHN", "USA", "EU"])
    eps = 1.5
    ps = mag.value_added_price * mag.production / (1 + eps)
    expected = ps - ps.sel(scenario="baseline")
    np.testing.assert_allclose(
        mag.producer_surplus_change.values, expected.values, rtol=1e-9, atol=1e-3
    )
    # consumption at the input stage includes what the region's magnet makers buy
    ox = ds.sel(stage="toy")
    np.testing.assert_allclose(
        ox.input_demand.sel(region="USA").values,
        0.4 * ds.production.sel(stage="toy_magnet", region="USA").values,
        rtol=1e-12,
    )
    assert (ox.consumption >= ox.input_demand - 1e-9).all()


def test_jacobian_matches_finite_differences_across_stages() -> None:
    rng = np.random.default_rng(7)
    B = 12
    chain, inst = every_measure_chain(rng, n_scen=B - 1)
    cal = chain.calibration
    u = initial_guess(cal, inst)
    u[:, : cal.N] = rng.normal(0.0, 0.1, (B, cal.N))
    J = evaluate(cal, inst, u).J
    h = 1e-7
    num = np.empty_like(J)
    for k in range(u.shape[1]):
        up, um = u.copy(), u.copy()
        up[:, k] += h
        um[:, k] -= h
        num[:, :, k] = (
            evaluate(cal, inst, up, jacobian=False).F - evaluate(cal, inst, um, jacobian=False).F
        ) / (2 * h)
    err = np.abs(J - num) / (1.0 + np.abs(num))
    assert np.median(err.max(axis=(1, 2))) < 1e-6  # (a row at a kink may differ)
    assert (err.max(axis=(1, 2)) < 1e-6).sum() >= B - 2
    # the cross-stage block is not empty: upstream prices move downstream clearing
    N = chain.n
    assert np.abs(J[:, N : 2 * N, :N]).max() > 0


def test_random_chains_with_every_measure_converge_and_engines_agree() -> None:
    rng = np.random.default_rng(11)
    chain, inst = every_measure_chain(rng, n_scen=23)
    cal = chain.calibration
    ref = solve_batch(cal, inst, engine="numpy")
    assert ref.converged.all(), [m for m in ref.messages if m]
    fast = solve_batch(cal, inst, engine="compiled")  # the kernel's chain block
    np.testing.assert_allclose(fast.u, ref.u, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fast.iterations, ref.iterations)
    assert fast.messages == ref.messages and fast.method == ref.method
    for name in ("S", "A", "X", "input_cost", "derived", "p_marginal", "covered", "residual"):
        a, b = getattr(ref.state, name), getattr(fast.state, name)
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-12, err_msg=name)


# -- draws --------------------------------------------------------------------------------------
def test_draws_vary_coefficients_within_their_range(write_toml) -> None:
    write_toml(copy.deepcopy(TOY_MARKET), "toy.toml")
    write_toml({**TOY_MAGNET, "elasticity_se": {"supply": {"default": 0.3}}}, "toy_magnet.toml")
    path = write_toml(TOY_CHAIN_TOML, "toy_chain.toml")
    chain = tp.load_market(path)
    assert isinstance(chain, Chain)
    sset = ScenarioSet(market=chain, scenarios=scenarios([FLOOR]))
    point = tp.solve(sset)
    ds = tp.solve(ScenarioSet(market=chain, scenarios=scenarios([FLOOR])), draws=8, seed=3)
    a = ds.input_coefficient.values[:, 0]
    assert a[0] == 0.4 and (a[1:] >= 0.3).all() and (a[1:] <= 0.5).all() and np.ptp(a) > 0
    np.testing.assert_allclose(
        ds.bloc_dependency.isel(draw=0).values, point.bloc_dependency.values, rtol=1e-12
    )
    assert (ds.draw_converged == 1).all()
    # each draw replicates its own base: the baseline rows do not move
    base = ds.production.sel(scenario="baseline")
    np.testing.assert_allclose(
        base.values, np.broadcast_to(base.isel(draw=0).values, base.shape), rtol=1e-12
    )
    again = tp.solve(ScenarioSet(market=chain, scenarios=scenarios([FLOOR])), draws=8, seed=3)
    np.testing.assert_array_equal(again.bloc_dependency.values, ds.bloc_dependency.values)


# -- files and errors ---------------------------------------------------------------------------
@pytest.fixture
def chain_files(write_toml):
    write_toml(copy.deepcopy(TOY_MARKET), "toy.toml")
    write_toml(copy.deepcopy(TOY_MAGNET), "toy_magnet.toml")
    return write_toml


def chain_error(write_toml, text: str) -> str:
    path = write_toml(text, "toy_chain.toml")
    with pytest.raises(tp.InputError) as info:
        tp.load_market(path)
    msg = str(info.value)
    assert msg.splitlines()[0].startswith(str(path))
    return msg


def test_chain_rules_are_clear_errors(chain_files) -> None:
    too_much = TOY_CHAIN_TOML.replace("coefficient = 0.4", "coefficient = 3.0").replace(
        "high = 0.5", "high = 3.0"
    )
    msg = chain_error(chain_files, too_much)
    assert "link[0].coefficient: CHN uses 45000 t/yr of 'toy'" in msg and "need 180000" in msg
    assert "final demand ≥ 0" in msg
    dear = TOY_CHAIN_TOML.replace("stages = [", "stages = [").replace(
        "coefficient = 0.4", "coefficient = 0.45"
    )
    chain_files({**TOY_MAGNET, "base_price": {"default": 20000.0}}, "toy_magnet.toml")
    msg = chain_error(chain_files, dear)
    assert "value added" in msg and "must be positive" in msg


def test_range_end_is_checked(chain_files) -> None:
    text = TOY_CHAIN_TOML.replace("high = 0.5", "high = 2.5")
    msg = chain_error(chain_files, text)
    assert "high end of its range" in msg


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('input = "toy"', 'input = "toy_magnet"\n#'), "must come before"),
        (('output = "toy_magnet"', 'output = "magnets"'), "'magnets' is not a stage"),
        (("low = 0.3", "low = 0.45"), "outside its range [0.45, 0.5]"),
        (('kind = "chain"', 'kind = "chain"\nextra = 1'), "extra"),
        (('stages = ["toy.toml", ', 'stages = ["toy.toml", "toy.toml", '), "listed twice"),
    ],
)
def test_bad_chain_files_name_the_field(chain_files, change, expected) -> None:
    text = TOY_CHAIN_TOML.replace(*change)
    assert expected in chain_error(chain_files, text)


def test_measure_stage_is_checked(chain_files) -> None:
    chain = tp.load_market(chain_files(TOY_CHAIN_TOML, "toy_chain.toml"))
    no_stage = {k: v for k, v in MAGNET_TARIFF.items() if k != "stage"}
    with pytest.raises(tp.InputError, match=r"measure\[0\]\.stage: required in chain"):
        ScenarioSet(market=chain, scenarios=scenarios([no_stage]))
    with pytest.raises(tp.InputError, match="'wire' is not a stage of chain 'toy_chain'"):
        ScenarioSet(market=chain, scenarios=scenarios([{**MAGNET_TARIFF, "stage": "wire"}]))
    # a region the stage does not list is refused by that stage's market
    bad = {**MAGNET_TARIFF, "exporters": ["AUS"]}
    with pytest.raises(tp.InputError, match=r"measure\[0\]\.exporters: unknown region 'AUS'"):
        ScenarioSet(market=chain, scenarios=scenarios([bad]))
    market = tp.Market.from_dict(copy.deepcopy(TOY_MARKET))
    with pytest.raises(tp.InputError, match="market 'toy' is not a chain"):
        ScenarioSet(market=market, scenarios=scenarios([MAGNET_TARIFF]))
    ok = ScenarioSet(market=market, scenarios=scenarios([{**FLOOR, "stage": "toy"}]))
    assert ok.scenarios[0].measures[0].stage == "toy"


def test_scenario_file_on_a_chain_solves(chain_files) -> None:
    chain_files(TOY_CHAIN_TOML, "toy_chain.toml")
    text = 'market = "toy_chain.toml"\n[target]\ngroup = "g7_partners"\nmax_share = 0.6\n'
    text += 'stage = "toy_magnet"\n[[scenario]]\nname = "floor"\n[[scenario.measure]]\n'
    text += (
        to_toml(FLOOR).replace("\n", "\n")
        if False
        else "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in FLOOR.items())
    )
    path = chain_files(text, "scen.toml")
    ds = tp.solve(tp.load_scenarios(path))
    assert list(ds.stage.values) == ["toy", "toy_magnet"]
    assert ds.attrs["chain"] == "toy_chain" and ds.attrs["target_stage"] == "toy_magnet"
    assert (ds.converged == 1).all()
    assert ds.meets_target.sel(stage="toy_magnet", scenario="floor") == 0  # 72% > 60%


@pytest.mark.parametrize("stage", ["toy", "toy_magnet"])
def test_a_small_tariff_costs_the_world_a_second_order_loss(stage: str) -> None:
    """From an undistorted chain, world welfare falls with the square of a small tariff at
    either stage: a first-order term would mean makers' input costs are counted twice (or not
    at all) somewhere in the ledger."""
    oxide = copy.deepcopy(TOY_MARKET)
    oxide.pop("base_tariffs")
    chain = Chain.from_markets(
        "undistorted",
        [tp.Market.from_dict(oxide), tp.Market.from_dict(copy.deepcopy(TOY_MAGNET))],
        [{"input": "toy", "output": "toy_magnet", "coefficient": 0.4}],
    )
    losses = []
    for t in (1e-3, 2e-3, 4e-3):
        tariff = {
            "type": "tariff",
            "stage": stage,
            "importers": ["USA", "EU"],
            "exporters": ["CHN"],
            "rate": t,
        }
        ds = solve(chain, [tariff]).sel(scenario="s0")
        losses.append(-float(ds.welfare_change.sum()))
    assert all(loss > 0 for loss in losses)
    np.testing.assert_allclose(losses[1] / losses[0], 4.0, rtol=0.02)
    np.testing.assert_allclose(losses[2] / losses[1], 4.0, rtol=0.02)
