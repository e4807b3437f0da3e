"""Malformed market and scenario files give one clear InputError (DESIGN §6).

Each error must name the file, the field and what is allowed; we assert on the message
content, not only on the exception type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from toy import REGIONS, TOY_SCENARIOS_TOML
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy.cli import app

ALLOWED_REGIONS = ", ".join(REGIONS)
ENV = {"COLUMNS": "250"}  # rich wraps at the terminal width; keep messages on one line


def _flat(text: str) -> str:
    """Collapse whitespace so line wrapping cannot break substring checks."""
    return " ".join(text.split())


def market_error(
    write_toml: Callable[..., Path], data: dict[str, Any] | str, name: str = "bad_market.toml"
) -> tuple[Path, str]:
    """Write a market file, load it and return (path, error message)."""
    path = write_toml(data, name)
    with pytest.raises(tp.InputError) as info:
        tp.load_market(path)
    return path, str(info.value)


def scenario_error(
    write_toml: Callable[..., Path],
    text: str,
    toy_market_dict: dict[str, Any],
    name: str = "bad_scenarios.toml",
) -> tuple[Path, str]:
    """Write the toy market and a scenario file, load it and return (path, message)."""
    write_toml(toy_market_dict, "toy.toml")
    path = write_toml(text, name)
    with pytest.raises(tp.InputError) as info:
        tp.load_scenarios(path)
    return path, str(info.value)


def one_measure(body: str, name: str = "opt") -> str:
    return f'market = "toy.toml"\n\n[[scenario]]\nname = "{name}"\n[[scenario.measure]]\n{body}'


def test_input_error_is_a_value_error() -> None:
    err = tp.InputError("f.toml", [("a.b", "bad"), ("c", "worse")])
    assert isinstance(err, ValueError)
    assert str(err).splitlines() == ["f.toml: 2 problem(s)", "  - a.b: bad", "  - c: worse"]


# -- markets ---------------------------------------------------------------------------------
def test_valid_toy_market_loads(write_toml, toy_market_dict) -> None:
    path = write_toml(toy_market_dict, "toy.toml")
    m = tp.load_market(path)
    assert m.regions == tuple(REGIONS)
    assert m.flows.sum() == pytest.approx(60200.0)
    assert m.base_tariff[0, 1] == 0.25


@pytest.mark.parametrize(
    ("mutate", "field", "code", "what"),
    [
        (lambda m: m["flows"].update(JPN={"USA": 10.0}), "flows.JPN", "JPN", "exporter"),
        (lambda m: m["flows"]["CHN"].update(KOR=10.0), "flows.CHN.KOR", "KOR", "importer"),
        (
            lambda m: m["base_tariffs"]["CHN"].update(JPN=0.1),
            "base_tariffs.CHN.JPN",
            "JPN",
            "importer",
        ),
        (
            lambda m: m["base_tariffs"].update(KOR={"USA": 0.1}),
            "base_tariffs.KOR",
            "KOR",
            "exporter",
        ),
        (
            lambda m: m["elasticities"]["supply"].update(JPN=0.5),
            "elasticities.supply.JPN",
            "JPN",
            "region",
        ),
        (lambda m: m["base_price"].update(BRA=1.0), "base_price.BRA", "BRA", "region"),
    ],
    ids=[
        "flow-exporter",
        "flow-importer",
        "tariff-importer",
        "tariff-exporter",
        "elasticity",
        "base-price",
    ],
)
def test_unknown_region_in_market(write_toml, toy_market_dict, mutate, field, code, what) -> None:
    mutate(toy_market_dict)
    path, msg = market_error(write_toml, toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert f"  - {field}: unknown {what} {code!r}" in msg
    assert f"(allowed: {ALLOWED_REGIONS})" in msg or f"(allowed: default, {ALLOWED_REGIONS})" in msg


@pytest.mark.parametrize(
    ("table", "region", "value", "rule"),
    [
        ("demand", "EU", -0.5, ">= 0"),
        ("supply", "default", -1.0, ">= 0"),
        ("substitution", "USA", 0.0, "> 0"),
        ("substitution", "default", -2.0, "> 0"),
    ],
)
def test_bad_elasticity(write_toml, toy_market_dict, table, region, value, rule) -> None:
    toy_market_dict["elasticities"][table][region] = value
    path, msg = market_error(write_toml, toy_market_dict)
    assert str(path) in msg
    assert f"elasticities.{table}.{region}: must be a finite number {rule}; got {value}" in msg


def test_non_positive_base_price(write_toml, toy_market_dict) -> None:
    toy_market_dict["base_price"]["USA"] = 0.0
    path, msg = market_error(write_toml, toy_market_dict)
    assert str(path) in msg
    assert "base_price.USA: must be a finite number > 0; got 0.0" in msg


def test_negative_flow(write_toml, toy_market_dict) -> None:
    toy_market_dict["flows"]["CHN"]["USA"] = -5.0
    path, msg = market_error(write_toml, toy_market_dict)
    assert str(path) in msg
    assert "flows.CHN.USA: must be a finite number >= 0" in msg


def test_missing_flows(write_toml, toy_market_dict) -> None:
    del toy_market_dict["flows"]
    path, msg = market_error(write_toml, toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert "flows: missing: give a `[flows]` table or a `flows_file`" in msg


def test_both_flows_and_flows_file(write_toml, toy_market_dict) -> None:
    toy_market_dict["flows_file"] = "toy_flows.csv"
    path, msg = market_error(write_toml, toy_market_dict)
    assert str(path) in msg
    assert "flows: give either `flows` or `flows_file`, not both" in msg


def test_flows_file_missing_on_disk(write_toml, toy_market_dict, tmp_path) -> None:
    del toy_market_dict["flows"]
    toy_market_dict["flows_file"] = "no_such_flows.csv"
    path, msg = market_error(write_toml, toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert "flows_file: file" in msg
    assert str(tmp_path / "no_such_flows.csv") in msg and "does not exist" in msg


def test_flows_csv_relative_to_market_file(write_toml, toy_market_dict, tmp_path) -> None:
    del toy_market_dict["flows"]
    toy_market_dict["flows_file"] = "data/flows.csv"  # relative to the market file
    (tmp_path / "sub" / "data").mkdir(parents=True)
    (tmp_path / "sub" / "data" / "flows.csv").write_text(
        "exporter,importer,quantity,source\nCHN,CHN,100,a\nCHN,USA,20,b\nUSA,EU,5,c\n"
        "AUS,AUS,1,d\nROW,ROW,1,e\n",
        encoding="utf-8",
    )
    m = tp.load_market(write_toml(toy_market_dict, "sub/m.toml"))
    assert m.flows[0, 1] == 20.0
    assert m.flow_sources[("CHN", "USA")] == "b"


def test_flows_csv_non_numeric_quantity(write_toml, toy_market_dict, tmp_path) -> None:
    csv_path = tmp_path / "toy_flows.csv"
    csv_path.write_text(
        "exporter,importer,quantity,source\nCHN,CHN,40000,x\nCHN,USA,lots,y\nAUS,EU,500,z\n",
        encoding="utf-8",
    )
    del toy_market_dict["flows"]
    toy_market_dict["flows_file"] = "toy_flows.csv"
    _, msg = market_error(write_toml, toy_market_dict)
    assert msg.splitlines()[0] == str(csv_path)  # the error names the CSV file ...
    assert "line 3.quantity: not a number: 'lots'" in msg  # ... and its line and column


def test_flows_csv_unknown_region_and_header(write_toml, toy_market_dict, tmp_path) -> None:
    del toy_market_dict["flows"]
    toy_market_dict["flows_file"] = "f.csv"
    (tmp_path / "f.csv").write_text("exporter,importer,quantity\nCHN,JPN,1\n", encoding="utf-8")
    _, msg = market_error(write_toml, toy_market_dict)
    assert str(tmp_path / "f.csv") in msg
    assert f"line 2.importer: unknown region 'JPN' (allowed: {ALLOWED_REGIONS})" in msg
    (tmp_path / "f.csv").write_text("from,to,qty\nCHN,CHN,1\n", encoding="utf-8")
    _, msg = market_error(write_toml, toy_market_dict)
    assert "header: columns ['exporter', 'importer', 'quantity'] missing" in msg


def test_non_numeric_value_in_toml(write_toml, toy_market_dict) -> None:
    path, msg = market_error(
        write_toml,
        {
            **toy_market_dict,
            "elasticities": {**toy_market_dict["elasticities"], "supply": {"default": "high"}},
        },
    )
    assert msg.splitlines()[0] == str(path)
    assert "elasticities.supply.default:" in msg
    assert "valid number" in msg and "'high'" in msg


def test_empty_market(write_toml, toy_market_dict) -> None:
    toy_market_dict["flows"] = {"CHN": {"CHN": 0.0, "USA": 0.0}}
    path, msg = market_error(write_toml, toy_market_dict)
    assert str(path) in msg
    assert "flows: the market is empty: no positive base flow" in msg


def test_region_neither_produces_nor_consumes(write_toml, toy_market_dict) -> None:
    toy_market_dict["regions"].append("JPN")
    path, msg = market_error(write_toml, toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert "flows: region JPN neither produces nor consumes; drop it" in msg
    assert len(msg.splitlines()) == 2  # one problem only


def test_duplicate_region(write_toml, toy_market_dict) -> None:
    toy_market_dict["regions"].append("USA")
    _, msg = market_error(write_toml, toy_market_dict)
    assert "regions: duplicate region codes ['USA']" in msg


def test_perfectly_inelastic_market(write_toml, toy_market_dict) -> None:
    toy_market_dict["elasticities"]["supply"] = {"default": 0.0}
    toy_market_dict["elasticities"]["demand"] = {"default": 0.0}
    _, msg = market_error(write_toml, toy_market_dict)
    assert "elasticities: supply and demand are both perfectly inelastic" in msg


def test_unknown_top_level_field(write_toml, toy_market_dict) -> None:
    toy_market_dict["base_tarifs"] = toy_market_dict.pop("base_tariffs")
    path, msg = market_error(write_toml, toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert "  - base_tarifs: unknown field" in msg


def test_unknown_field_lists_allowed_fields(write_toml, toy_market_dict) -> None:
    toy_market_dict["base_tarifs"] = toy_market_dict.pop("base_tariffs")
    _, msg = market_error(write_toml, toy_market_dict)
    assert "base_tariffs" in msg  # the field the user meant is among the allowed names


def test_unknown_elasticity_kind(write_toml, toy_market_dict) -> None:
    toy_market_dict["elasticities"]["suply"] = toy_market_dict["elasticities"].pop("supply")
    _, msg = market_error(write_toml, toy_market_dict)
    assert "elasticities.suply: unknown field" in msg
    assert "elasticities.supply: required field is missing" in msg


def test_invalid_toml_syntax(write_toml) -> None:
    path, msg = market_error(write_toml, 'id = "toy"\nregions = ["CHN", \n[flows\n')
    assert msg.splitlines()[0] == str(path)
    assert "not valid TOML" in msg
    assert re.search(r"line \d+", msg)


def test_market_file_does_not_exist(tmp_path) -> None:
    with pytest.raises(tp.InputError, match="file does not exist") as info:
        tp.load_market(tmp_path / "nowhere.toml")
    assert str(tmp_path / "nowhere.toml") in str(info.value)


def test_unknown_market_id_lists_shipped_markets() -> None:
    with pytest.raises(tp.InputError) as info:
        tp.load_market("unobtainium")
    msg = str(info.value)
    assert msg.startswith("unobtainium")
    assert "no such market (shipped markets:" in msg
    for mid in tp.list_markets():
        assert mid in msg


def test_market_from_dict_names_source(toy_market_dict) -> None:
    toy_market_dict["elasticities"]["demand"]["EU"] = -1.0
    with pytest.raises(tp.InputError) as info:
        tp.Market.from_dict(toy_market_dict, source="my-market")
    assert str(info.value).splitlines()[0] == "my-market"
    assert info.value.source == "my-market"
    assert info.value.problems == [
        ("elasticities.demand.EU", "must be a finite number >= 0; got -1.0")
    ]


def test_several_problems_reported_at_once(write_toml, toy_market_dict) -> None:
    toy_market_dict["elasticities"]["demand"]["EU"] = -1.0
    toy_market_dict["base_tariffs"]["CHN"]["JPN"] = 0.1
    path, msg = market_error(write_toml, toy_market_dict)
    assert msg.splitlines()[0] == f"{path}: 2 problem(s)"
    assert "elasticities.demand.EU" in msg and "base_tariffs.CHN.JPN" in msg


# -- scenario files --------------------------------------------------------------------------
def test_valid_toy_scenarios_load(toy_files) -> None:
    _, scen = toy_files
    sset = tp.load_scenarios(scen)
    assert sset.names == ["us_tariff", "chn_export_tax", "shock"]
    assert sset.market.id == "toy"
    assert sset.target_share == 0.6
    kinds = [m.type for s in sset.scenarios for m in s.measures]
    assert set(kinds) == {"tariff", "export_tax", "supply_shock", "demand_shift"}


def test_unknown_measure_type(write_toml, toy_market_dict) -> None:
    path, msg = scenario_error(
        write_toml, one_measure('type = "quota"\nimporters = ["USA"]\n'), toy_market_dict
    )
    assert msg.splitlines()[0] == str(path)
    assert "scenario[0].measure[0]" in msg
    assert "'quota'" in msg
    for kind in tp.measures.MEASURES:
        assert kind in msg  # every allowed type is listed


def test_measure_without_type(write_toml, toy_market_dict) -> None:
    path, msg = scenario_error(write_toml, one_measure("rate = 0.1\n"), toy_market_dict)
    assert str(path) in msg
    assert "scenario[0].measure[0]" in msg and "'type'" in msg


def test_unknown_field_in_measure(write_toml, toy_market_dict) -> None:
    body = 'type = "tariff"\nimporters = ["USA"]\nrat = 0.2\n'
    path, msg = scenario_error(write_toml, one_measure(body), toy_market_dict)
    assert msg.splitlines()[0].startswith(str(path))
    assert "scenario[0].measure[0].rat: unknown field" in msg
    assert "scenario[0].measure[0].rate: required field is missing" in msg


def test_unknown_field_in_measure_lists_allowed_fields(write_toml, toy_market_dict) -> None:
    body = 'type = "tariff"\nimporters = ["USA"]\nexporter = ["CHN"]\nrate = 0.2\n'
    _, msg = scenario_error(write_toml, one_measure(body), toy_market_dict)
    assert "scenario[0].measure[0].exporter: unknown field" in msg
    assert "exporters" in msg  # the allowed spelling is shown


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ('type = "tariff"\nimporters = ["USA", "JPN"]\nrate = 0.2\n', "importers", "JPN"),
        (
            'type = "tariff"\nimporters = ["USA"]\nexporters = ["KOR"]\nrate = 0.2\n',
            "exporters",
            "KOR",
        ),
        ('type = "export_tax"\nexporter = "CHL"\nrate = 0.1\n', "exporter", "CHL"),
        (
            'type = "export_tax"\nexporter = "CHN"\ndestinations = ["IND"]\nrate = 0.1\n',
            "destinations",
            "IND",
        ),
        ('type = "supply_shock"\nregion = "COD"\nfraction = 0.5\n', "region", "COD"),
        ('type = "demand_shift"\nregion = ["EU", "JPN"]\nfraction = 0.5\n', "region", "JPN"),
    ],
)
def test_unknown_region_in_measure(write_toml, toy_market_dict, body, field, code) -> None:
    path, msg = scenario_error(write_toml, one_measure(body), toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert (
        f"  - scenario[0].measure[0].{field}: unknown region {code!r} "
        f"(allowed: {ALLOWED_REGIONS})" in msg
    )


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ('type = "supply_shock"\nregion = "AUS"\nfraction = 1.0\n', "less than 1"),
        ('type = "supply_shock"\nregion = "AUS"\nfraction = -0.1\n', "greater than or equal to 0"),
        ('type = "demand_shift"\nregion = "EU"\nfraction = -1.0\n', "greater than -1"),
        ('type = "tariff"\nimporters = ["EU"]\nrate = -0.1\n', "greater than or equal to 0"),
    ],
)
def test_value_out_of_range(write_toml, toy_market_dict, body, expect) -> None:
    path, msg = scenario_error(write_toml, one_measure(body), toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert re.search(r"scenario\[0\]\.measure\[0\]\.(fraction|rate): ", msg)
    assert expect in msg


def test_second_scenario_error_has_its_index(write_toml, toy_market_dict) -> None:
    text = (
        one_measure('type = "supply_shock"\nregion = "AUS"\nfraction = 0.1\n', name="ok")
        + '\n[[scenario]]\nname = "bad"\n[[scenario.measure]]\ntype = "supply_shock"\n'
        'region = "AUS"\nfraction = 0.1\n[[scenario.measure]]\ntype = "tariff"\n'
        'importers = ["XXX"]\nrate = 0.1\n'
    )
    _, msg = scenario_error(write_toml, text, toy_market_dict)
    assert "scenario[1].measure[1].importers: unknown region 'XXX'" in msg


def test_duplicate_scenario_names(write_toml, toy_market_dict) -> None:
    text = one_measure('type = "supply_shock"\nregion = "AUS"\nfraction = 0.1\n', name="dup")
    text += '\n[[scenario]]\nname = "dup"\n'
    path, msg = scenario_error(write_toml, text, toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert "scenario[1].name: duplicate scenario name 'dup'" in msg


def test_scenario_named_baseline(write_toml, toy_market_dict) -> None:
    text = one_measure('type = "supply_shock"\nregion = "AUS"\nfraction = 0.1\n', name="baseline")
    path, msg = scenario_error(write_toml, text, toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert "scenario[0].name:" in msg and "`baseline` is reserved" in msg


def test_bad_scenario_name(write_toml, toy_market_dict) -> None:
    text = one_measure('type = "supply_shock"\nregion = "AUS"\nfraction = 0.1\n', name="has space")
    _, msg = scenario_error(write_toml, text, toy_market_dict)
    assert "scenario[0].name:" in msg and "'has space'" in msg


def test_no_scenarios(write_toml, toy_market_dict) -> None:
    path, msg = scenario_error(write_toml, 'market = "toy.toml"\n', toy_market_dict)
    assert str(path) in msg and "scenario: required field is missing" in msg


def test_target_share_out_of_range(write_toml, toy_market_dict) -> None:
    text = 'market = "toy.toml"\ntarget_share = 1.5\n[[scenario]]\nname = "a"\n'
    _, msg = scenario_error(write_toml, text, toy_market_dict)
    assert "target_share:" in msg and "1.5" in msg


def test_unknown_field_in_scenario_file(write_toml, toy_market_dict) -> None:
    text = 'market = "toy.toml"\ntarget_shares = 0.6\n[[scenario]]\nname = "a"\n'
    _, msg = scenario_error(write_toml, text, toy_market_dict)
    assert "  - target_shares: unknown field" in msg


def test_target_needs_a_known_group_or_bloc(write_toml, toy_market_dict) -> None:
    scen = '\n[[scenario]]\nname = "a"\n'
    text = 'market = "toy.toml"\ntarget = { group = "g8", max_share = 0.6 }' + scen
    _, msg = scenario_error(write_toml, text, toy_market_dict)
    assert "unknown group 'g8' (allowed: g7, g7_partners, eu)" in msg
    text = 'market = "toy.toml"\ntarget = { bloc = ["XYZ"], max_share = 0.6 }' + scen
    _, msg = scenario_error(write_toml, text, toy_market_dict)
    assert "target.bloc" in msg and "XYZ" in msg


def test_scenario_market_id_does_not_exist(write_toml, toy_market_dict) -> None:
    text = 'market = "unobtainium"\n[[scenario]]\nname = "a"\n'
    path, msg = scenario_error(write_toml, text, toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert "market: no market 'unobtainium' (shipped markets:" in msg
    for mid in tp.list_markets():
        assert mid in msg


def test_scenario_market_path_does_not_exist(write_toml, toy_market_dict, tmp_path) -> None:
    text = 'market = "markets/missing.toml"\n[[scenario]]\nname = "a"\n'
    path, msg = scenario_error(write_toml, text, toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert f"market: market file {tmp_path / 'markets' / 'missing.toml'} does not exist" in msg


def test_scenario_market_invalid_names_market_file(write_toml, toy_market_dict) -> None:
    bad = dict(toy_market_dict, regions=[*REGIONS, "JPN"])
    write_toml(bad, "toy_bad.toml")
    path = write_toml('market = "toy_bad.toml"\n[[scenario]]\nname = "a"\n', "s.toml")
    with pytest.raises(tp.InputError) as info:
        tp.load_scenarios(path)
    assert str(info.value).splitlines()[0].endswith("toy_bad.toml")


def test_scenario_invalid_toml(write_toml, toy_market_dict) -> None:
    path, msg = scenario_error(write_toml, 'market = "toy.toml\n', toy_market_dict)
    assert msg.splitlines()[0] == str(path)
    assert "not valid TOML" in msg


def test_scenarios_in_code_are_checked_against_the_market(toy_market) -> None:
    bad = tp.Scenario(name="x", measures=[tp.measures.Tariff(importers=["JPN"], rate=0.1)])
    with pytest.raises(tp.InputError) as info:
        tp.solve([bad], toy_market)
    assert "scenario[0].measure[0].importers: unknown region 'JPN'" in str(info.value)
    assert ALLOWED_REGIONS in str(info.value)


def test_scenario_in_code_rejects_unknown_type_and_baseline() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown measure type 'tarif' \(did you mean 'tariff'\?\) \(allowed: .*tariff",
    ):
        tp.Scenario(name="x", measure=[{"type": "tarif", "importers": ["USA"], "rate": 0.1}])
    with pytest.raises(ValueError, match="`baseline` is reserved"):
        tp.Scenario(name="baseline")


# -- CLI: validate and nothing half-written ----------------------------------------------------
runner = CliRunner()


def test_cli_validate_ok(toy_files) -> None:
    market, scen = toy_files
    res = runner.invoke(app, ["validate", str(market), str(scen)], env=ENV)
    assert res.exit_code == 0, res.output
    out = _flat(res.output)
    assert f"ok {market}: market 'toy'" in out
    assert f"ok {scen}: scenario set for market 'toy', 3 scenarios" in out


def test_cli_validate_invalid_exits_2(toy_files, write_toml, toy_market_dict) -> None:
    market, _ = toy_files
    toy_market_dict["elasticities"]["substitution"]["USA"] = 0.0
    bad = write_toml(toy_market_dict, "bad.toml")
    res = runner.invoke(app, ["validate", str(market), str(bad)], env=ENV)
    assert res.exit_code == 2
    out = _flat(res.output)
    assert f"ok {market}" in out  # the valid file is still reported
    assert f"invalid: {bad}" in out
    assert "elasticities.substitution.USA: must be a finite number > 0; got 0.0" in out


def test_cli_validate_invalid_scenario_file(toy_files, write_toml) -> None:
    bad = write_toml(one_measure('type = "tariff"\nimporters = ["JPN"]\nrate = 0.1\n'), "b.toml")
    res = runner.invoke(app, ["validate", str(bad)], env=ENV)
    assert res.exit_code == 2
    out = _flat(res.output)
    assert str(bad) in out
    assert "scenario[0].measure[0].importers: unknown region 'JPN'" in out


def test_cli_validate_prints_message_verbatim(write_toml, toy_market_dict) -> None:
    del toy_market_dict["flows"]
    bad = write_toml(toy_market_dict, "bad.toml")
    res = runner.invoke(app, ["validate", str(bad)], env=ENV)
    assert res.exit_code == 2
    assert "give a `[flows]` table or a `flows_file`" in res.output


def test_cli_validate_missing_file(tmp_path) -> None:
    res = runner.invoke(app, ["validate", str(tmp_path / "nope.toml")], env=ENV)
    assert res.exit_code == 2
    assert "file does not exist" in res.output


def test_cli_run_bad_input_writes_nothing(toy_files, write_toml, tmp_path) -> None:
    bad = write_toml(
        TOY_SCENARIOS_TOML.replace('importers = ["USA"]', 'importers = ["JPN"]'),
        "bad_scenarios.toml",
    )
    out = tmp_path / "out.nc"
    res = runner.invoke(app, ["run", str(bad), "-o", str(out)], env=ENV)
    assert res.exit_code == 2
    assert "scenario[0].measure[0].importers: unknown region 'JPN'" in _flat(res.output)
    assert not out.exists()
    assert not list(tmp_path.glob("*.nc*"))  # no temporary part file left behind either


def test_cli_run_bad_market_writes_nothing(toy_files, write_toml, toy_market_dict, tmp_path):
    _, scen = toy_files
    toy_market_dict["elasticities"]["demand"]["EU"] = -0.3
    write_toml(toy_market_dict, "toy.toml")  # overwrite the market the scenarios refer to
    out = tmp_path / "out.nc"
    res = runner.invoke(app, ["run", str(scen), "-o", str(out)], env=ENV)
    assert res.exit_code == 2
    assert "elasticities.demand.EU" in res.output
    assert not out.exists()
