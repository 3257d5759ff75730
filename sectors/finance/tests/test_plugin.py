"""The plugin registers cleanly, its recipe validates, and German Credit decodes from german.doc."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bigmodel.core import get_registry


def test_plugin_registers_and_validates(monkeypatch):
    monkeypatch.setenv("BIGMODEL_STRICT_PLUGINS", "1")
    registry = get_registry()
    assert registry.problems() == {}
    sector = registry.sector("finance")
    task = sector.task("credit_default")
    assert task.label_map.names == ["good", "bad"] and task.label_map.positive == "bad"
    assert registry.model(task.model).name == "ft_transformer"
    assert registry.loader("german_credit").task == "tabular"
    for metric in task.metrics:
        registry.metric(metric)  # every metric the task reports resolves
    dataset = registry.dataset("finance/german_credit")
    assert dataset.mirror_subdir == "german_credit"
    assert {f.member for f in dataset.files} == {"german.data", "german.doc"}
    assert {f.name for f in registry.value_factors("finance")} >= {"auroc_gain_over_logistic", "cost_saved_per_applicant"}
    assert {f.factor for f in registry.value_factors("finance")} == {"T", "K", "U", "R"}
    # presets resolve, and the sector's fields are typed
    demo = task.resolve_recipe("demo")
    assert demo.metric_for_best_model == "auroc" and demo.cost_fn == 5 and demo.cost_fp == 1
    assert task.resolve_recipe("full").cv_folds == 5


def test_plugin_import_stays_light():
    heavy = ("torch", "sklearn", "lightgbm", "matplotlib", "onnxruntime", "transformers")
    code = ("import sys, bigmodel_finance.plugin; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_recipe_errors_name_the_field():
    from bigmodel_finance.plugin import CreditRiskRecipe

    recipe = CreditRiskRecipe()
    with pytest.raises(ValueError, match="calibration"):
        recipe.with_sets(["calibration=platt"])
    with pytest.raises(ValueError, match="cost_fn"):
        recipe.with_sets(["cost_fn=-1"])
    with pytest.raises(ValueError, match="multiple of attention_n_heads"):
        recipe.with_sets(["d_block=60"])
    assert recipe.with_sets(["cost_fn=10", "numeric_transform=standard"]).cost_fn == 10


def test_doc_decoding(shared_data):
    from bigmodel_finance.german import COLUMNS, parse_doc

    attributes = parse_doc(shared_data / "german_credit" / "german.doc")
    assert len(attributes) == 20
    by_name = {name: a for (name, _), a in zip(COLUMNS, attributes)}
    assert by_name["checking_account"].codes["A11"] == "... < 0 DM"
    assert by_name["checking_account"].codes["A14"] == "no checking account"
    # a description continued on the next line is joined
    assert by_name["checking_account"].codes["A13"] == "... >= 200 DM / salary assignments for at least 1 year"
    assert by_name["purpose"].codes["A410"] == "others"
    assert by_name["foreign_worker"].codes == {"A201": "yes", "A202": "no"}
    # "Attibute 6" (sic) in german.doc is still found
    assert by_name["savings"].title == "Savings account/bonds" and len(by_name["savings"].codes) == 5
    assert [a.kind for a in attributes].count("numeric") == 7


def test_loader_reads_german_credit(shared_data):
    from bigmodel_finance.german import load_german_credit

    raw = load_german_credit(shared_data / "german_credit", options={})["train"]
    assert len(raw) == 1000
    assert raw.labels.count("good") == 700 and raw.labels.count("bad") == 300
    assert raw.sources[0] == "german.data:1"
    first = {k: v[0] for k, v in raw.inputs.items()}
    assert first["checking_account"] == "... < 0 DM" and first["duration_months"] == 6.0
    assert first["purpose"] == "radio/television" and first["age_years"] == 67.0
    assert raw.inputs["credit_amount"].dtype == np.float64 and raw.inputs["housing"].dtype == object
    codes = load_german_credit(shared_data / "german_credit", options={"decode": False})["train"]
    assert codes.inputs["checking_account"][0] == "A11"


def test_loader_reports_bad_rows(tmp_path, shared_data):
    from bigmodel.core.data import DataError
    from bigmodel_finance.german import load_german_credit

    (tmp_path / "german.doc").write_bytes((shared_data / "german_credit" / "german.doc").read_bytes())
    rows = (shared_data / "german_credit" / "german.data").read_text().splitlines()[:3]
    (tmp_path / "german.data").write_text("\n".join(rows[:2] + [rows[2].replace("A14", "A19")]) + "\n")
    with pytest.raises(DataError, match=r"german.data:3: column 'checking_account': code 'A19' is not described"):
        load_german_credit(tmp_path, options={})
    (tmp_path / "german.data").write_text(rows[0].replace(" 6 ", " six ") + "\n")
    with pytest.raises(DataError, match=r"german.data:1: column 'duration_months': 'six' is not a number"):
        load_german_credit(tmp_path, options={})
    (tmp_path / "german.data").write_text(rows[0] + " extra\n")
    with pytest.raises(DataError, match="german.data:1: expected 21"):
        load_german_credit(tmp_path, options={})
    with pytest.raises(DataError, match="unknown option 'sep'"):
        load_german_credit(tmp_path, options={"sep": ","})
