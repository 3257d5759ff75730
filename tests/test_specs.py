"""The pydantic models plugins register: validation errors name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bigmodel.core import DataFile, DatasetSpec, LabelMap, Recipe, SectorSpec, SectorTask, ValueFactor


def test_label_map_round_trips_through_json(tmp_path):
    lm = LabelMap.from_names(["malignant", "benign"], positive="malignant")
    path = tmp_path / "labels.json"
    lm.save(path)
    again = LabelMap.load(path)
    assert again == lm
    assert again.names == ["malignant", "benign"] and again.label2id == {"malignant": 0, "benign": 1}
    assert again.positive_id == 0 and len(again) == 2
    assert not list(tmp_path.glob(".labels.json.*")), "temporary file left behind"


@pytest.mark.parametrize(
    ("id2label", "message"),
    [
        ({0: "a", 2: "b"}, "ids must be contiguous from 0"),
        ({1: "a", 2: "b"}, "ids must be contiguous from 0"),
        ({0: "a", 1: "a"}, "label names must be unique; duplicated: ['a']"),
        ({0: "a", 1: " "}, "label names must be non-empty strings"),
        ({}, "label map is empty"),
    ],
)
def test_label_map_must_be_a_bijection(id2label, message):
    with pytest.raises(ValidationError) as err:
        LabelMap(id2label=id2label)
    assert message in str(err.value) and "id2label" in str(err.value)


def test_label_map_positive_must_be_a_label_and_unknown_names_are_named():
    with pytest.raises(ValidationError, match="positive class 'bad' is not one of the label names"):
        LabelMap.from_names(["good", "fair"], positive="bad")
    with pytest.raises(KeyError, match="unknown label 'maybe'"):
        LabelMap.from_names(["yes", "no"]).encode("maybe")


def test_label_map_load_reports_file_on_bad_json(tmp_path):
    path = tmp_path / "lm.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"lm.json: not valid JSON"):
        LabelMap.load(path)


def test_data_file_hash_form():
    assert DataFile(filename="a", url="u", hash="SHA256:" + "A" * 64).hash == "sha256:" + "a" * 64
    with pytest.raises(ValidationError, match="hash"):
        DataFile(filename="a", url="u", hash="sha1:abc")
    with pytest.raises(ValidationError, match="hash"):
        DataFile(filename="a", url="u", hash="md5:" + "z" * 32)


def test_dataset_spec_fields_are_validated():
    good = dict(name="tiny", sector="demo", task="text", licence="CC0", loader="text_table",
                files=[DataFile(filename="a.csv", url="http://x/a.csv", hash="md5:" + "0" * 32)])
    spec = DatasetSpec(**good)
    assert spec.key == "demo/tiny" and spec.source_urls == ["http://x/a.csv"]
    with pytest.raises(ValidationError, match="task"):
        DatasetSpec(**{**good, "task": "audio"})
    with pytest.raises(ValidationError, match="name"):
        DatasetSpec(**{**good, "name": "Bad Name"})
    with pytest.raises(ValidationError, match="at least one file"):
        DatasetSpec(**{**good, "files": []})


class TextRecipe(Recipe):
    max_length: int = 128


def test_recipe_set_overrides_are_type_checked():
    recipe = TextRecipe().with_sets(["learning_rate=3e-4", "max_length=64", "mixed_precision=bf16"])
    assert recipe.learning_rate == pytest.approx(3e-4) and recipe.max_length == 64
    assert recipe.mixed_precision == "bf16"
    with pytest.raises(ValueError, match=r"--set: recipe field 'max_length': .*integer.*'abc'"):
        TextRecipe().with_sets(["max_length=abc"])
    with pytest.raises(ValueError, match=r"--set: unknown recipe field 'max_len'"):
        TextRecipe().with_sets(["max_len=3"])
    with pytest.raises(ValueError, match=r"--set 'oops': expected key=value"):
        TextRecipe().with_sets(["oops"])
    with pytest.raises(ValueError, match=r"recipe field 'learning_rate'.*greater than 0"):
        TextRecipe().with_sets(["learning_rate=0"])


def test_recipe_from_toml_and_yaml_files(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text("[recipe]\nepochs = 2\nbatch_size = 16\n")
    yaml = tmp_path / "r.yaml"
    yaml.write_text("epochs: 4\nmax_length: 48\n")
    assert TextRecipe().with_file(toml).batch_size == 16
    assert TextRecipe().with_file(yaml).max_length == 48
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_size: -1\n")
    with pytest.raises(ValueError, match=r"bad.yaml: recipe field 'batch_size'"):
        TextRecipe().with_file(bad)
    with pytest.raises(ValueError, match=r"does not exist"):
        TextRecipe().with_file(tmp_path / "missing.toml")
    txt = tmp_path / "r.txt"
    txt.write_text("epochs = 1\n")
    with pytest.raises(ValueError, match=r"use a .toml, .yaml or .yml file"):
        TextRecipe().with_file(txt)


def test_recipe_digest_changes_with_values():
    assert TextRecipe().digest() == TextRecipe().digest()
    assert TextRecipe().digest() != TextRecipe(max_length=64).digest()


def test_recipe_members_are_validated_recipes_and_leave_other_digests_alone():
    """recipe members: each entry is a valid update of the run's recipe (errors name the entry and the
    field); member_recipes() applies them; a recipe without members keeps the digest it had before the
    field existed."""
    assert Recipe().digest() == "a1275c022f888bd7"  # Recipe() before `members` was added (twelfth session)
    both = Recipe(learning_rate=1e-3).with_sets(["members=[{}, {learning_rate: 0.01, epochs: 5}]"])
    assert [(r.learning_rate, r.epochs, r.members) for r in both.member_recipes()] == [(1e-3, 3, []), (0.01, 5, [])]
    assert both.digest() != Recipe(learning_rate=1e-3).digest() and Recipe().member_recipes() == []
    for sets, message in [
        (["members=[{}]"], "'members' lists 1 entry; an ensemble needs at least 2"),
        (["members=[{}, {foo: 1}]"], "'members' entry 1: foo: Extra inputs are not permitted"),
        (["members=[{}, {learning_rate: -1}]"], "'members' entry 1: learning_rate: Input should be greater than 0 .got -1"),
        (["members=[{bagging: 2}, {}]"], "'members' entry 0: bagging applies to the whole run"),
        (["members=[{}, {}]", "ensemble=2"], "'members' is an ensemble of its own"),
    ]:
        with pytest.raises(ValueError, match=message):
            Recipe().with_sets(sets)


def _task(**kw):
    base = dict(name="t", kind="text", label_map=LabelMap.from_names(["a", "b"]), model="hf_text_classifier", recipe=TextRecipe)
    return SectorTask(**{**base, **kw})


def test_presets_are_validated_at_registration():
    task = _task(presets={"demo": {"epochs": 1, "max_length": 32}})
    assert task.resolve_recipe("demo").max_length == 32
    with pytest.raises(ValidationError, match=r"task 't': preset 'demo': unknown recipe field 'max_lenght'"):
        _task(presets={"demo": {"max_lenght": 32}})
    with pytest.raises(ValueError, match=r"unknown preset 'fast'.*\['demo'\]"):
        task.resolve_recipe("fast")


def test_sector_spec_tasks():
    spec = SectorSpec(name="s", title="S", tasks=[_task(), _task(name="u")])
    assert spec.task().name == "t" and spec.task("u").name == "u"
    with pytest.raises(ValueError, match=r"sector 's' has no task 'v'"):
        spec.task("v")
    with pytest.raises(ValidationError, match="task names must be unique"):
        SectorSpec(name="s", title="S", tasks=[_task(), _task()])


@pytest.mark.parametrize(
    ("field", "value"),
    [("factor", "X"), ("value", 1.5), ("value", -0.1), ("weight", -1), ("kind", "guessed"), ("evidence", "")],
)
def test_value_factor_errors_name_the_field(field, value):
    good = dict(factor="T", name="gain", weight=1, value=0.5, evidence="metrics.json", kind="measured")
    with pytest.raises(ValidationError) as err:
        ValueFactor(**{**good, field: value})
    assert err.value.errors()[0]["loc"] == (field,)
