"""The value model: shaping, aggregation, files, measured items from a plugin, the CLI."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from bigmodel.core import RegistryError, ValueFactor, get_registry, reset
from bigmodel.core import _manager
from bigmodel.core import value as vm

# -- a small sector plugin with value factors --------------------------------------------

PLUGIN = "bigmodel_valtest_plugin"
PLUGIN_SOURCE = textwrap.dedent(
    '''
    import json
    from pathlib import Path

    from bigmodel.core import LabelMap, SectorSpec, SectorTask, ValueFactorSpec, hookimpl

    def _metrics(run_dir):
        return json.loads((Path(run_dir) / "metrics.json").read_text())

    def accuracy(run_dir):
        v = _metrics(run_dir)["test"]["accuracy"]
        return v, f"metrics.json test.accuracy = {v}"

    def macro_f1(run_dir):
        v = _metrics(run_dir)["test"]["macro_f1"]
        return v, f"metrics.json test.macro_f1 = {v}"

    def coverage(run_dir):
        v = _metrics(run_dir)["test"]["coverage"]
        return v, f"metrics.json test.coverage = {v}"

    def calibration(run_dir):
        ece = _metrics(run_dir)["test"]["ece"]
        return 1 - ece, f"1 - metrics.json test.ece ({ece})"

    def cheap_inference(run_dir):
        test = _metrics(run_dir)["test"]
        if "cost_score" not in test:
            return None
        if test["cost_score"] == "bad":
            return 1.7, "out of range on purpose"
        return test["cost_score"], f"metrics.json test.cost_score = {test['cost_score']}"

    @hookimpl
    def register_sectors(register):
        register(SectorSpec(name="valtest", title="Value test", tasks=[SectorTask(
            name="intent", kind="text", label_map=LabelMap.from_names(["a", "b"]),
            model="hf_text_classifier", metrics=["accuracy"])]))

    @hookimpl
    def register_value_factors(register):
        items = [
            ("T", "accuracy_gain", 2.0, accuracy),
            ("T", "f1_level", 1.0, macro_f1),
            ("K", "coverage", 1.0, coverage),
            ("U", "calibration", 1.0, calibration),
            ("R", "cheap_inference", 1.0, cheap_inference),
        ]
        for factor, name, weight, fn in items:
            register(ValueFactorSpec(sector="valtest", factor=factor, name=name, weight=weight,
                                     description=f"{name} from metrics.json",
                                     measure=f"{__name__}:{fn.__name__}"))
    '''
)

# T = (2·0.8 + 1·0.5)/3 = 0.7, K = 0.6, U = 1 - 0.1 = 0.9; R not measured (no cost_score)
METRICS = {"validation": {}, "test": {"accuracy": 0.8, "macro_f1": 0.5, "coverage": 0.6, "ece": 0.1}}
LINEAR = "[shaping]\nT = 'linear'\nK = 'linear'\nU = 'linear'\nR = 'linear'\n"


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The test sector registered as a built-in; no other entry point is loaded."""
    code = tmp_path / "plugin_src"
    code.mkdir()
    (code / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.delitem(sys.modules, PLUGIN, raising=False)
    monkeypatch.setitem(_manager.BUILTIN_PLUGINS, "valtest", PLUGIN)
    monkeypatch.setenv("BIGMODEL_LOAD_PLUGINS", "")
    reset()
    yield get_registry()
    sys.modules.pop(PLUGIN, None)
    reset()


def make_run(root: Path, name: str, metrics: dict | None = None, sector: str = "valtest") -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"sector": sector, "task": "intent", "kind": "text"}))
    (run / "metrics.json").write_text(json.dumps(metrics if metrics is not None else METRICS))
    return run


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def item(factor: str, name: str, value: float, weight: float = 1.0, kind: str = "measured") -> ValueFactor:
    return ValueFactor(factor=factor, name=name, value=value, weight=weight, evidence="test", kind=kind)


ALL_LINEAR = {f: vm.Shaping.make("linear") for f in vm.FACTORS}


# -- shaping functions --------------------------------------------------------------------


def test_linear_and_power_at_ends_and_middle():
    lin, sq = vm.Shaping.make("linear"), vm.Shaping.make("power", exponent=2)
    assert (lin(0), lin(1), lin(0.3)) == (0, 1, 0.3)
    assert (sq(0), sq(1)) == (0, 1)
    assert sq(0.5) == pytest.approx(0.25)
    assert vm.Shaping.make("power", exponent=0.5)(0.25) == pytest.approx(0.5)


def test_log1p_maps_unit_interval_onto_itself_and_is_concave():
    f = vm.Shaping.make("log1p", k=9)
    assert f(0) == 0 and f(1) == pytest.approx(1)
    assert f(0.5) == pytest.approx(math.log(5.5) / math.log(10))
    assert f(0.1) - f(0) > f(1) - f(0.9)  # diminishing returns


def test_sigmoid_is_rescaled_through_ends_and_centre():
    f = vm.Shaping.make("sigmoid", centre=0.5, slope=10)
    assert f(0) == pytest.approx(0) and f(1) == pytest.approx(1)
    assert f(0.5) == pytest.approx(0.5)  # symmetric centre
    g = vm.Shaping.make("sigmoid", centre=0.7, slope=8)
    s = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    low, high = s(-8 * 0.7), s(8 * 0.3)
    assert g(0.7) == pytest.approx((0.5 - low) / (high - low))
    assert g(0) == pytest.approx(0) and g(1) == pytest.approx(1)
    assert g(0.75) - g(0.65) > g(0.25) - g(0.15)  # steepest near the centre


@pytest.mark.parametrize("shaping", [vm.Shaping.make(n) for n in vm.SHAPING_FUNCTIONS])
def test_every_shaping_is_increasing_within_unit_interval(shaping):
    ys = [shaping(i / 20) for i in range(21)]
    assert all(0 <= y <= 1 for y in ys)
    assert all(b >= a for a, b in zip(ys, ys[1:]))
    assert ys[0] == pytest.approx(0) and ys[-1] == pytest.approx(1)


def test_shaping_defaults_are_filled_in_and_documented():
    assert vm.Shaping.make("sigmoid").to_dict() == {"function": "sigmoid", "centre": 0.5, "slope": 10.0}
    assert vm.DEFAULT_SHAPING["U"].describe() == "sigmoid(centre=0.5, slope=10)"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"function": "tanh"}, "unknown shaping function 'tanh'"),
        ({"function": "sigmoid", "slope": -1}, "x.slope: sigmoid parameter must be a number in (0, 100]"),
        ({"function": "sigmoid", "centre": 1.5}, "x.centre"),
        ({"function": "log1p", "k": 0}, "x.k"),
        ({"function": "power", "exponent": "two"}, "x.exponent"),
        ({"function": "linear", "k": 3}, "x.k: not a parameter of linear"),
        ({"centre": 0.5}, "x.function: missing"),
    ],
)
def test_invalid_shaping_names_the_field(data, message):
    with pytest.raises(ValueError, match=re_escape(message)):
        vm.Shaping.parse(data, where="x")


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


# -- aggregation --------------------------------------------------------------------------


def test_weights_are_normalised_within_a_factor():
    assert vm.normalise_weights([2, 1, 1]) == [0.5, 0.25, 0.25]
    a = [item("T", "a", 0.8, 2), item("T", "b", 0.5, 1)]
    b = [item("T", "a", 0.8, 20), item("T", "b", 0.5, 10)]
    assert vm.factor_score(a) == pytest.approx(0.7) == vm.factor_score(b)
    with pytest.raises(ValueError, match="≥ 0"):
        vm.normalise_weights([1, -1])
    with pytest.raises(ValueError, match="sum to 0"):
        vm.normalise_weights([0, 0])


def test_aggregation_matches_hand_computation():
    items = [
        item("T", "a", 0.8, 2), item("T", "b", 0.5, 1),   # T = 0.7
        item("K", "c", 0.6),                              # K = 0.6
        item("U", "d", 1.0, 1), item("U", "e", 0.8, 1),   # U = 0.9
        item("R", "f", 0.4, 3),                           # R = 0.4
    ]
    factors = vm.score_factors(items, ALL_LINEAR)
    scores = {f: r.score for f, r in factors.items()}
    assert scores == pytest.approx({"T": 0.7, "K": 0.6, "U": 0.9, "R": 0.4})
    assert factors["U"].shares == [0.5, 0.5]
    assert vm.combine(scores, ALL_LINEAR) == pytest.approx(0.7 * 0.6 * 0.9 * 0.4)  # 0.1512
    shaped = {**ALL_LINEAR, "K": vm.Shaping.make("power", exponent=2)}
    assert vm.combine(scores, shaped) == pytest.approx(0.7 * 0.36 * 0.9 * 0.4)


def test_sensitivity_moves_one_factor_by_a_tenth_and_clips():
    scores = {"T": 0.7, "K": 0.6, "U": 0.95, "R": 1.0}
    s = vm.sensitivity(scores, ALL_LINEAR)
    base = 0.7 * 0.6 * 0.95
    assert s["T"] == pytest.approx(0.8 * 0.6 * 0.95 - base)
    assert s["U"] == pytest.approx(0.7 * 0.6 * 1.0 - base)  # 0.95 + 0.1 clipped to 1
    assert s["R"] == pytest.approx(0.0)  # already 1


def test_missing_factor_makes_v_not_computable():
    items = [item("T", "a", 0.9), item("K", "b", 0.9), item("U", "c", 0.9)]
    factors = vm.score_factors(items, ALL_LINEAR)
    assert factors["R"].score is None and factors["R"].missing == "no measured or declared items"
    scores = {f: r.score for f, r in factors.items()}
    assert vm.combine(scores, ALL_LINEAR) is None
    assert vm.sensitivity(scores, ALL_LINEAR) == {f: None for f in vm.FACTORS}
    zero = vm.score_factors([*items, item("R", "d", 0.9, weight=0)], ALL_LINEAR)
    assert zero["R"].score is None and zero["R"].missing == "all item weights are 0"


def test_declared_never_overrides_measured():
    measured = [item("K", "coverage", 0.6)]
    declared = [item("K", "coverage", 1.0, kind="declared"), item("R", "funding", 0.5, kind="declared"),
                item("R", "cheap_inference", 0.9, kind="declared")]
    used, ignored = vm.merge_items(measured, declared, reserved={"cheap_inference"})
    assert [(i.name, i.kind, i.value) for i in used] == [("coverage", "measured", 0.6), ("funding", "declared", 0.5)]
    reasons = {i.name: why for i, why in ignored}
    assert reasons["coverage"] == "shadowed by the measured item K.coverage"
    assert "measured item of this sector" in reasons["cheap_inference"]
    used, ignored = vm.merge_items(measured, declared, measured_only=True)
    assert [i.kind for i in used] == ["measured"]
    assert {i.name: why for i, why in ignored}["funding"] == "--measured-only"


# -- files --------------------------------------------------------------------------------


def test_declared_items_from_toml_and_yaml(tmp_path):
    toml = write(tmp_path / "f.toml", """
        [[item]]
        factor = "R"
        name = "funding"
        value = 0.6
        weight = 2
        evidence = "Series A 2026"

        [[item]]
        factor = "U"
        name = "ce_mark"
        value = 1
        evidence = "CE certificate 1234"
    """)
    items = vm.load_declared(toml)
    assert [(i.factor, i.name, i.value, i.weight, i.kind) for i in items] == [
        ("R", "funding", 0.6, 2.0, "declared"), ("U", "ce_mark", 1.0, 1.0, "declared")]
    yaml_file = write(tmp_path / "f.yaml", """
        item:
          - {factor: R, name: funding, value: 0.6, weight: 2, evidence: Series A 2026}
    """)
    assert vm.load_declared(yaml_file)[0].model_dump() == items[0].model_dump()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('factor = "X"\nname = "a"\nvalue = 0.5\nevidence = "e"', "item 1 (a): field 'factor': unknown factor 'X'"),
        ('factor = "R"\nname = "a"\nvalue = 1.5\nevidence = "e"', "item 1 (a): field 'value': value must be in [0, 1] (got 1.5)"),
        ('factor = "R"\nname = "a"\nvalue = 0.5\nweight = -1\nevidence = "e"', "item 1 (a): field 'weight': weight must be ≥ 0 (got -1)"),
        ('factor = "R"\nname = "a"\nvalue = 0.5', "item 1 (a): field 'evidence': Field required"),
        ('factor = "R"\nname = "Bad Name"\nvalue = 0.5\nevidence = "e"', "field 'name': String should match pattern"),
        ('factor = "R"\nname = "a"\nvalue = 0.5\nevidence = "e"\nkind = "measured"', "field 'kind'"),
        ('factor = "R"\nname = "a"\nvalue = 0.5\nevidence = "e"\nsource = "x"', "field 'source': Extra inputs are not permitted"),
    ],
)
def test_invalid_declared_file_names_file_and_field(tmp_path, entry, message):
    path = write(tmp_path / "bad.toml", "[[item]]\n" + entry + "\n")
    with pytest.raises(ValueError, match=re_escape(f"{path}: ") + ".*" + re_escape(message)):
        vm.load_declared(path)


def test_duplicate_declared_name_and_unparseable_files(tmp_path):
    dup = write(tmp_path / "dup.yaml", """
        item:
          - {factor: R, name: funding, value: 0.6, evidence: a}
          - {factor: T, name: funding, value: 0.1, evidence: b}
    """)
    with pytest.raises(ValueError, match="item 2 \\(funding\\): field 'name': 'funding' is already declared by item 1"):
        vm.load_declared(dup)
    broken = write(tmp_path / "broken.toml", "[[item]\n")
    with pytest.raises(ValueError, match=f"factors file {re_escape(str(broken))}: cannot parse"):
        vm.load_declared(broken)
    with pytest.raises(ValueError, match="use a .toml, .yaml or .yml file"):
        vm.load_declared(write(tmp_path / "f.json", "{}"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vm.load_declared(tmp_path / "absent.toml")


def test_weights_file_sets_item_weights_and_shaping(tmp_path):
    path = write(tmp_path / "w.toml", """
        [weights.T]
        accuracy_gain = 1
        [shaping]
        T = "linear"
        [shaping.U]
        function = "sigmoid"
        centre = 0.6
        slope = 8
    """)
    cfg = vm.load_weights(path)
    assert cfg.weights == {"T": {"accuracy_gain": 1.0}}
    assert cfg.shaping["U"] == vm.Shaping.make("sigmoid", centre=0.6, slope=8)
    assert cfg.shaping["R"] == vm.DEFAULT_SHAPING["R"]  # untouched factors keep the default
    reweighted = cfg.apply([item("T", "accuracy_gain", 0.8, 2), item("T", "f1_level", 0.5, 1)])
    assert vm.factor_score(reweighted) == pytest.approx(0.65)
    yaml_cfg = vm.load_weights(write(tmp_path / "w.yml", "weights:\n  T: {accuracy_gain: 1}\nshaping:\n  R: {function: power, exponent: 3}\n"))
    assert yaml_cfg.shaping["R"](0.5) == pytest.approx(0.125)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[weights.T]\naccuracy_gain = -1\n", "weights.T.accuracy_gain: weight must be a number ≥ 0 (got -1)"),
        ("[weights.Q]\na = 1\n", "weights.Q: unknown factor 'Q'"),
        ("[shaping.X]\nfunction = 'linear'\n", "shaping.X: unknown factor 'X'"),
        ("[shaping.U]\nfunction = 'tanh'\n", "shaping.U.function: unknown shaping function 'tanh'"),
        ("[shaping.U]\nfunction = 'sigmoid'\nslope = 0\n", "shaping.U.slope: sigmoid parameter must be a number in (0, 100] (got 0)"),
        ("[weights.T]\na = true\n", "weights.T.a: weight must be a number"),
        ("[weight.T]\na = 1\n", "unknown section 'weight'"),
    ],
)
def test_invalid_weights_file_names_file_and_field(tmp_path, text, message):
    path = write(tmp_path / "w.toml", text)
    with pytest.raises(ValueError, match=re_escape(f"{path}: {message}")):
        vm.load_weights(path)


# -- measured items from a registered plugin ---------------------------------------------


def test_measured_items_come_from_the_sector_plugin(plugin, tmp_path):
    run = make_run(tmp_path, "run_a")
    measured, not_applicable = vm.measured_items(run, plugin)
    by_name = {i.name: i for i in measured}
    assert set(by_name) == {"accuracy_gain", "f1_level", "coverage", "calibration"}
    assert by_name["accuracy_gain"].weight == 2.0 and by_name["accuracy_gain"].kind == "measured"
    assert by_name["calibration"].value == pytest.approx(0.9)
    assert by_name["coverage"].evidence == "metrics.json test.coverage = 0.6"
    assert [s.name for s in not_applicable] == ["cheap_inference"]


def test_failing_measure_is_reported_with_sector_item_and_run(plugin, tmp_path):
    run = make_run(tmp_path, "run_broken", metrics={"validation": {}})
    with pytest.raises(ValueError) as info:
        vm.measured_items(run, plugin)
    msg = str(info.value)
    assert f"run {run}" in msg and "sector 'valtest' item T.accuracy_gain" in msg and "KeyError" in msg
    assert "5 value-factor measure(s) failed" in msg  # every item is reported, not only the first
    bad = make_run(tmp_path, "run_bad", metrics={"test": {**METRICS["test"], "cost_score": "bad"}})
    with pytest.raises(ValueError, match=r"item R.cheap_inference: measure .* returned value 1.7; expected a number in \[0, 1\]"):
        vm.measured_items(bad, plugin)


def test_run_of_unknown_sector_or_without_run_json(plugin, tmp_path):
    with pytest.raises(RegistryError, match="unknown sector 'nosuch'"):
        vm.measured_items(make_run(tmp_path, "r", sector="nosuch"), plugin)
    (tmp_path / "partial").mkdir()
    with pytest.raises(FileNotFoundError, match="no run.json"):
        vm.measured_items(tmp_path / "partial", plugin)


def test_value_of_run_declared_fill_and_precedence(plugin, tmp_path):
    run = make_run(tmp_path, "run_a")
    weights = vm.load_weights(write(tmp_path / "w.toml", LINEAR))
    alone = vm.value_of_run(run, registry=plugin, weights=weights)
    assert alone.value is None and alone.missing == ["R"]
    declared = vm.load_declared(write(tmp_path / "d.toml", """
        [[item]]
        factor = "R"
        name = "funding"
        value = 0.5
        evidence = "Series A 2026"
        [[item]]
        factor = "K"
        name = "coverage"
        value = 1.0
        evidence = "our own estimate"
    """))
    full = vm.value_of_run(run, registry=plugin, declared=declared, weights=weights)
    assert full.factors["K"].score == pytest.approx(0.6)  # measured coverage wins
    assert full.value == pytest.approx(0.7 * 0.6 * 0.9 * 0.5)  # 0.189
    assert [(i.name, why) for i, why in full.ignored] == [("coverage", "shadowed by the measured item K.coverage")]
    only = vm.value_of_run(run, registry=plugin, declared=declared, weights=weights, measured_only=True)
    assert only.value is None and only.factors["R"].missing == "no measured items"


def test_weights_naming_an_item_under_the_wrong_factor_is_an_error(plugin, tmp_path):
    run = make_run(tmp_path, "run_a")
    weights = vm.load_weights(write(tmp_path / "w.toml", "[weights.K]\naccuracy_gain = 1\n[weights.R]\ntypo = 2\n"))
    with pytest.raises(ValueError, match=r"weights.K.accuracy_gain: item 'accuracy_gain' belongs to factor T"):
        vm.value_of_run(run, registry=plugin, weights=weights)
    ok = vm.load_weights(write(tmp_path / "w2.toml", "[weights.R]\ntypo = 2\n"))
    result = vm.value_of_run(run, registry=plugin, weights=ok)
    assert result.notes == [f"{tmp_path / 'w2.toml'}: weights.R.typo matches no item of this run"]


# -- command line -------------------------------------------------------------------------


def invoke(*args: str):
    from bigmodel.cli._main import cli

    return CliRunner().invoke(cli, ["value", *args], catch_exceptions=False)


def test_cli_json_and_chart_for_two_runs(plugin, tmp_path):
    a = make_run(tmp_path, "run_a", metrics={"test": {**METRICS["test"], "cost_score": 0.4}})
    b = make_run(tmp_path, "run_b", metrics={"test": {**METRICS["test"], "accuracy": 0.5}})
    weights = write(tmp_path / "w.toml", LINEAR)
    chart = tmp_path / "out" / "value.png"
    result = invoke(str(a), str(b), "--weights", str(weights), "--json", "--chart", str(chart))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ra, rb = data["runs"]
    assert ra["V"] == pytest.approx(0.7 * 0.6 * 0.9 * 0.4)  # 0.1512
    assert ra["factors"]["T"]["items"][0]["share"] == pytest.approx(2 / 3)
    assert ra["sensitivity"]["T"] == pytest.approx(0.8 * 0.6 * 0.9 * 0.4 - 0.1512)
    assert rb["V"] is None and rb["computable"] is False and rb["missing"] == ["R"]
    assert rb["not_applicable"][0]["name"] == "cheap_inference"
    assert data["shaping"]["U"] == {"function": "linear"}
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in chart.parent.iterdir()] == ["value.png"]  # no temporary left behind


def test_cli_tables_comparison_and_declared_items(plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    a = make_run(tmp_path, "run_a")
    b = make_run(tmp_path, "run_b", metrics={"test": {**METRICS["test"], "cost_score": 0.9}})
    declared = write(tmp_path / "d.yaml", "item:\n  - {factor: R, name: funding, value: 0.5, evidence: Series A 2026}\n")
    out = invoke(str(a), str(b), "--factors", str(declared)).output
    assert "Series A 2026" in out and "declared" in out and "metrics.json test.accuracy = 0.8" in out
    assert "sensitivity" in out and "comparison" in out and "run_a" in out and "run_b" in out
    # defaults: U sigmoid(0.5, 10), R log1p(9); run_a's R is the declared funding alone
    v = 0.7 * 0.6 * vm.DEFAULT_SHAPING["U"](0.9) * vm.DEFAULT_SHAPING["R"](0.5)
    assert f"{v:.3f}" in out
    measured_only = invoke(str(a), "--factors", str(declared), "--measured-only").output
    assert "not computable" in measured_only and "--measured-only" in measured_only


def test_cli_errors_are_one_line_and_name_the_field(plugin, tmp_path):
    from bigmodel.cli._main import cli

    run = make_run(tmp_path, "run_a")
    bad = write(tmp_path / "bad.toml", "[[item]]\nfactor = 'Z'\nname = 'x'\nvalue = 0.5\nevidence = 'e'\n")
    result = CliRunner().invoke(cli, ["value", str(run), "--factors", str(bad)])
    assert result.exit_code == 1
    assert f"Error: {bad}: item 1 (x): field 'factor': unknown factor 'Z'" in result.output
    result = CliRunner().invoke(cli, ["value", str(run), "--chart", str(tmp_path / "c.jpg")])
    assert result.exit_code == 1 and "must end in .png" in result.output


def test_file_examples_in_the_docs_are_valid(tmp_path):
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "value-model.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(toml|yaml)\n(.*?)```", doc, flags=re.S)
    assert len(blocks) == 4
    for n, (lang, text) in enumerate(blocks):
        path = tmp_path / f"example{n}.{lang}"
        path.write_text(text)
        if re.search(r"^(\[\[item\]\]|item:)", text, flags=re.M):
            assert vm.load_declared(path)
        else:
            assert vm.load_weights(path).shaping["U"] == vm.Shaping.make("sigmoid", centre=0.6, slope=8)
