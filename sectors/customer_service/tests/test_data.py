"""Customer-service CSV/JSONL input through the core data loader: good files load, bad ones fail clearly."""

from __future__ import annotations

import pytest

from bigmodel.core import LabelMap, get_registry

LABELS = LabelMap.from_names(["card_arrival", "lost_or_stolen_card", "exchange_rate"])


def _load(path, **kwargs):
    from bigmodel.core.data import load_splits

    return load_splits(path, label_map=kwargs.pop("label_map", LABELS), loader="text_table", task="text",
                       progress=False, **kwargs)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _good_rows(n_per_class=4):
    rows = []
    for label, phrase in [("card_arrival", "Where is my new card"), ("lost_or_stolen_card", "Someone stole my card"),
                          ("exchange_rate", "What rate do you use for euros")]:
        rows += [f'"{phrase}, take {i}?",{label}' for i in range(n_per_class)]
    return rows


def test_generic_csv_with_own_column_names_loads_and_carves_validation(tmp_path):
    path = _write(tmp_path, "messages.csv", "message,intent\n" + "\n".join(_good_rows(10)) + "\n")
    splits, label_map = _load(path, options={"text_column": "message", "label_column": "intent"},
                              validation_fraction=0.2, seed=3)
    assert label_map == LABELS
    assert set(splits) == {"train", "validation"}
    assert len(splits["train"]) == 24 and len(splits["validation"]) == 6
    assert sorted(set(splits["validation"].labels.tolist())) == [0, 1, 2]  # stratified
    assert all(isinstance(t, str) and t for t in splits["train"].inputs)


def test_generic_jsonl_with_a_user_label_set_extends_only_when_asked(tmp_path):
    lines = ['{"text": "my card is late", "label": "card_arrival"}',
             '{"text": "I want to close my account", "label": "close_account"}'] * 6
    path = _write(tmp_path, "train.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"train\.jsonl:2: unknown label 'close_account'"):
        _load(path)
    splits, label_map = _load(path, extend_labels=True, validation_fraction=0.5)
    assert label_map.names == [*LABELS.names, "close_account"]
    # a user-given label set of their own: the label map is simply theirs
    own = LabelMap.from_names(["close_account", "card_arrival"])
    splits, label_map = _load(path, label_map=own, validation_fraction=0.5)
    assert label_map == own and set(splits["train"].labels.tolist()) == {0, 1}


def test_missing_column_names_the_file_and_the_option(tmp_path):
    path = _write(tmp_path, "train.csv", "text,intent\nwhere is my card,card_arrival\n")
    with pytest.raises(ValueError, match=r"train\.csv:2: no column 'label' \(columns: text, intent\); set the label_column option"):
        _load(path)


def test_empty_text_names_the_line(tmp_path):
    rows = _good_rows()
    rows.insert(3, '"   ",card_arrival')
    path = _write(tmp_path, "train.csv", "text,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"train\.csv:5: empty text in column 'text'"):
        _load(path)


def test_unknown_label_names_the_line_and_the_known_labels(tmp_path):
    rows = _good_rows()
    rows.append("I was charged twice,duplicate_charge")
    path = _write(tmp_path, "train.csv", "text,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"train\.csv:14: unknown label 'duplicate_charge' \(known: card_arrival, lost_or_stolen_card, exchange_rate\)"):
        _load(path)


def test_banking77_reads_with_the_declared_loader_options(shared_data, isolated_cache, monkeypatch):
    from bigmodel.core.data import load_splits

    monkeypatch.setenv("BIGMODEL_DATA_MIRROR", str(shared_data))
    registry = get_registry()
    spec = registry.dataset("customer_service/banking77")
    task = registry.sector("customer_service").task()
    splits, label_map = load_splits(spec, label_map=task.label_map, seed=0, validation_fraction=0.1, progress=False)
    assert label_map == task.label_map
    assert len(splits["test"]) == 3080
    assert len(splits["train"]) + len(splits["validation"]) == 10003
    assert len(set(splits["test"].labels.tolist())) == 77
    # quoted multi-line texts stay one example each
    assert all(text.strip() for text in splits["train"].inputs)
