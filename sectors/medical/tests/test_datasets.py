"""The declared MedMNIST datasets: RetinaMNIST verifies through the mirror, BreastMNIST's re-save is refused."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bigmodel.core import get_registry


def test_retinamnist_fetches_through_the_mirror_and_verifies(shared_data, isolated_cache, monkeypatch):
    from bigmodel.core.data import fetch, load_splits

    monkeypatch.setenv("BIGMODEL_DATA_MIRROR", str(shared_data))
    spec = get_registry().dataset("medical/retinamnist")
    folder = fetch(spec, progress=False)
    cached = folder / "retinamnist.npz"
    assert cached.is_relative_to(isolated_cache)
    assert hashlib.md5(cached.read_bytes()).hexdigest() == "bd4c0672f1bba3e3a89f0e4e876791e4"
    task = get_registry().sector("medical").task("retinopathy_grading")
    splits, label_map = load_splits(spec, label_map=task.label_map, progress=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 1080, "validation": 120, "test": 400}
    assert np.bincount(splits["test"].labels).tolist() == [174, 46, 92, 68, 20]
    assert splits["train"].inputs[0].shape == (28, 28, 3) and label_map == task.label_map


def test_breastmnist_declared_dataset_rejects_the_resaved_copy(shared_data, isolated_cache, monkeypatch):
    from bigmodel.core.data import DataError, fetch

    monkeypatch.setenv("BIGMODEL_DATA_MIRROR", str(shared_data))
    spec = get_registry().dataset("medical/breastmnist")
    with pytest.raises(DataError, match=r"md5 checksum mismatch for breastmnist\.npz: expected "
                                        r"750601b1f35ba3300ea97c75c52ff8f6, got 098de56cd2d92ef2f7170e6153c02849"):
        fetch(spec, progress=False)
    assert not (isolated_cache / "datasets" / "medical" / "breastmnist" / "breastmnist.npz").exists()
    assert (shared_data / "medmnist" / "breastmnist.npz").is_file()  # the mirror is left alone


def test_breastmnist_as_local_data_keeps_published_ids(shared_data):
    from bigmodel.core.data import load_splits

    task = get_registry().sector("medical").task("breast_screening")
    splits, _ = load_splits(shared_data / "medmnist" / "breastmnist.npz", label_map=task.label_map, progress=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 546, "validation": 78, "test": 156}
    # 0 = malignant (the positive class): 42 of 156 test images, as published
    assert np.bincount(splits["test"].labels).tolist() == [42, 114]
