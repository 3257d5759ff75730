"""Fetching (real HTTP on 127.0.0.1 through pooch, mirrors, cache), label encoding, splits, ``bigmodel data``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bigmodel.cli import cli
from bigmodel.core import DataFile, DatasetSpec, LabelMap
from bigmodel.core.data import (
    DataError,
    RawSplit,
    Split,
    cache_dir,
    carve_validation,
    encode,
    fetch,
    guess_loader,
    is_cached,
    join_splits,
    load_splits,
    subset,
)

UNREACHABLE = "http://127.0.0.1:9/official"  # discard port: nothing listens, a download would fail
BANKING77_SHA256 = {
    "train.csv": "b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b",
    "test.csv": "d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Served:
    root: Path
    url: str
    hits: list[str] = field(default_factory=list)


@pytest.fixture
def server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``root``; ``hits`` records every GET path."""
    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, format, *args):
            """Keep test output clean (requests are recorded in ``hits``)."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Served(root=root, url=f"http://127.0.0.1:{httpd.server_port}", hits=hits)
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def dataset(files: list[DataFile], **kwargs) -> DatasetSpec:
    base = {"name": "toy", "sector": "testsector", "task": "text", "licence": "CC0-1.0", "loader": "text_table"}
    return DatasetSpec(files=files, **{**base, **kwargs})


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


CSV = b"text,label\nhello there,greet\nbye now,leave\n"


# -- cache location ------------------------------------------------------------------------


def test_cache_dir_follows_env_then_platformdirs(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.setenv("BIGMODEL_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BIGMODEL_CACHE_DIR")
    assert cache_dir() == Path(platformdirs.user_cache_dir("bigmodel"))


# -- downloads over real HTTP --------------------------------------------------------------


@pytest.mark.parametrize("algo", ["sha256", "md5"])
def test_download_verified_then_served_from_cache(server, isolated_cache, algo):
    (server.root / "a.csv").write_bytes(CSV)
    digest = hashlib.new(algo, CSV).hexdigest()
    spec = dataset([DataFile(filename="train.csv", url=f"{server.url}/a.csv", hash=f"{algo}:{digest}")])

    folder = fetch(spec, progress=False)

    assert folder == isolated_cache / "datasets" / "testsector" / "toy"
    assert (folder / "train.csv").read_bytes() == CSV
    assert listing(folder) == ["train.csv"]  # no temporary files left behind
    assert server.hits == ["/a.csv"]
    assert is_cached(spec)
    fetch(spec, progress=False)
    assert server.hits == ["/a.csv"], "a cached file with a good hash must not be downloaded again"


def test_checksum_mismatch_shows_both_hashes_and_keeps_nothing(server, isolated_cache):
    (server.root / "a.csv").write_bytes(CSV)
    wrong = sha256(b"something else")
    spec = dataset([DataFile(filename="train.csv", url=f"{server.url}/a.csv", hash=f"sha256:{wrong}")])

    with pytest.raises(DataError) as err:
        fetch(spec, progress=False)

    message = str(err.value)
    assert wrong in message and sha256(CSV) in message and f"{server.url}/a.csv" in message
    assert listing(isolated_cache / "datasets" / "testsector" / "toy") == []
    assert not is_cached(spec)


def test_corrupted_cache_entry_is_downloaded_again(server, isolated_cache):
    (server.root / "a.csv").write_bytes(CSV)
    spec = dataset([DataFile(filename="train.csv", url=f"{server.url}/a.csv", hash=f"sha256:{sha256(CSV)}")])
    folder = isolated_cache / "datasets" / "testsector" / "toy"
    folder.mkdir(parents=True)
    (folder / "train.csv").write_bytes(b"truncated")

    fetch(spec, progress=False)

    assert (folder / "train.csv").read_bytes() == CSV
    assert server.hits == ["/a.csv"]


def test_unreachable_official_url_is_a_clear_error(isolated_cache):
    spec = dataset([DataFile(filename="train.csv", url=f"{UNREACHABLE}/a.csv", hash=f"sha256:{sha256(CSV)}")])
    with pytest.raises(DataError, match=r"127\.0\.0\.1:9/official/a\.csv: download of train\.csv failed"):
        fetch(spec, progress=False)
    assert listing(isolated_cache / "datasets" / "testsector" / "toy") == []


def test_file_urls_are_copied_verified_and_missing_ones_named(isolated_cache, tmp_path):
    source = tmp_path / "published.csv"
    source.write_bytes(CSV)
    spec = dataset([DataFile(filename="train.csv", url=source.as_uri(), hash=f"sha256:{sha256(CSV)}")])
    folder = fetch(spec, progress=False)
    assert (folder / "train.csv").read_bytes() == CSV
    gone = dataset([DataFile(filename="test.csv", url=(tmp_path / "gone.csv").as_uri(), hash=f"sha256:{sha256(CSV)}")],
                   name="gone")
    with pytest.raises(DataError, match=r"gone\.csv: no such file"):
        fetch(gone, progress=False)


def test_official_url_failure_says_the_mirror_lacked_the_file(isolated_cache, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    spec = dataset([DataFile(filename="train.csv", url=f"{UNREACHABLE}/a.csv", hash=f"sha256:{sha256(CSV)}")])
    with pytest.raises(DataError, match=rf"download of train\.csv failed .*; the mirror {mirror} has no toy/train\.csv"):
        fetch(spec, mirror=str(mirror), progress=False)
    with pytest.raises(DataError, match="not a directory or an http"):
        fetch(spec, mirror=str(tmp_path / "nowhere"), progress=False)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_archive_members_are_extracted_and_verified(server, isolated_cache):
    test_csv = b"text,label\nhi,greet\n"
    (server.root / "bundle.zip").write_bytes(_zip({"data/train.csv": CSV, "data/test.csv": test_csv, "README": b"x"}))
    url = f"{server.url}/bundle.zip"
    spec = dataset([
        DataFile(filename="train.csv", url=url, member="data/train.csv", hash=f"sha256:{sha256(CSV)}"),
        DataFile(filename="test.csv", url=url, member="data/test.csv", hash=f"md5:{hashlib.md5(test_csv).hexdigest()}"),
    ])

    folder = fetch(spec, progress=False)

    assert (folder / "train.csv").read_bytes() == CSV and (folder / "test.csv").read_bytes() == test_csv
    assert listing(folder) == ["test.csv", "train.csv"]  # neither the archive nor extraction folders remain
    assert server.hits == ["/bundle.zip"], "one archive download serves all its members"


def test_archive_member_hash_is_checked(server, isolated_cache):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("data/train.csv")
        info.size = len(CSV)
        archive.addfile(info, io.BytesIO(CSV))
    (server.root / "bundle.tar.gz").write_bytes(buffer.getvalue())
    url = f"{server.url}/bundle.tar.gz"
    wrong = sha256(b"other")
    spec = dataset([DataFile(filename="train.csv", url=url, member="data/train.csv", hash=f"sha256:{wrong}")])

    with pytest.raises(DataError) as err:
        fetch(spec, progress=False)
    assert f"{url}!data/train.csv" in str(err.value) and wrong in str(err.value) and sha256(CSV) in str(err.value)
    assert listing(isolated_cache / "datasets" / "testsector" / "toy") == []

    missing = dataset([DataFile(filename="x.csv", url=url, member="data/nope.csv", hash=f"sha256:{sha256(CSV)}")])
    with pytest.raises(DataError, match="archive has no member 'data/nope.csv'"):
        fetch(missing, progress=False)


def test_http_mirror_is_consulted_before_the_official_url(server, isolated_cache):
    (server.root / "mirror" / "toyfiles").mkdir(parents=True)
    (server.root / "mirror" / "toyfiles" / "train.csv").write_bytes(CSV)
    spec = dataset([DataFile(filename="train.csv", url=f"{UNREACHABLE}/train.csv", hash=f"sha256:{sha256(CSV)}")],
                   mirror_subdir="toyfiles")

    folder = fetch(spec, mirror=f"{server.url}/mirror/", progress=False)

    assert (folder / "train.csv").read_bytes() == CSV
    assert server.hits == ["/mirror/toyfiles/train.csv"]


def test_http_mirror_without_the_file_falls_through_to_the_official_url(server, isolated_cache):
    (server.root / "a.csv").write_bytes(CSV)
    spec = dataset([DataFile(filename="train.csv", url=f"{server.url}/a.csv", hash=f"sha256:{sha256(CSV)}")])

    fetch(spec, mirror=f"{server.url}/mirror", progress=False)

    assert server.hits == ["/mirror/toy/train.csv", "/a.csv"]  # mirror first (404), then the official URL


def test_http_mirror_with_a_bad_copy_fails_without_trying_elsewhere(server, isolated_cache):
    (server.root / "mirror" / "toy").mkdir(parents=True)
    (server.root / "mirror" / "toy" / "train.csv").write_bytes(b"tampered")
    (server.root / "a.csv").write_bytes(CSV)
    spec = dataset([DataFile(filename="train.csv", url=f"{server.url}/a.csv", hash=f"sha256:{sha256(CSV)}")])

    with pytest.raises(DataError) as err:
        fetch(spec, mirror=f"{server.url}/mirror", progress=False)
    assert sha256(b"tampered") in str(err.value) and sha256(CSV) in str(err.value)
    assert "/mirror/toy/train.csv" in str(err.value)
    assert server.hits == ["/mirror/toy/train.csv"]
    assert listing(isolated_cache / "datasets" / "testsector" / "toy") == []


# -- directory mirror against the real shared data -----------------------------------------


def banking77_spec() -> DatasetSpec:
    files = [DataFile(filename=n, url=f"{UNREACHABLE}/banking77/{n}", hash=f"sha256:{h}") for n, h in BANKING77_SHA256.items()]
    return dataset(files, name="banking77", mirror_subdir="banking77", loader_options={"label_column": "category"})


def banking77_labels(shared_data: Path) -> LabelMap:
    return LabelMap.from_names(json.loads((shared_data / "banking77" / "categories.json").read_text()))


def test_directory_mirror_of_real_banking77_then_load(shared_data, isolated_cache):
    spec = banking77_spec()

    folder = fetch(spec, mirror=str(shared_data), progress=False)

    for name, digest in BANKING77_SHA256.items():
        assert sha256((folder / name).read_bytes()) == digest
    splits, label_map = load_splits(spec, label_map=banking77_labels(shared_data), mirror=str(shared_data),
                                    progress=False, seed=0, validation_fraction=0.1)
    assert len(label_map) == 77
    assert len(splits["train"]) + len(splits["validation"]) == 10003 and len(splits["test"]) == 3080
    assert abs(len(splits["validation"]) - 1000) <= 1
    assert splits["train"].labels.dtype == np.int64


def test_mirror_from_environment_variable(shared_data, isolated_cache, monkeypatch):
    monkeypatch.setenv("BIGMODEL_DATA_MIRROR", str(shared_data))
    folder = fetch(banking77_spec(), progress=False)
    assert listing(folder) == ["test.csv", "train.csv"]


def test_directory_mirror_rejects_a_file_with_another_checksum(shared_data, isolated_cache):
    publisher_md5 = "750601b1f35ba3300ea97c75c52ff8f6"  # BreastMNIST as published; the shared copy is a re-save
    spec = dataset([DataFile(filename="breastmnist.npz", url=f"{UNREACHABLE}/breastmnist.npz", hash=f"md5:{publisher_md5}")],
                   name="breastmnist", task="image", loader="npz_images", mirror_subdir="medmnist")

    with pytest.raises(DataError) as err:
        fetch(spec, mirror=str(shared_data), progress=False)

    message = str(err.value)
    assert publisher_md5 in message and "098de56cd2d92ef2f7170e6153c02849" in message
    assert str(shared_data / "medmnist" / "breastmnist.npz") in message and "mirror was left untouched" in message
    assert (shared_data / "medmnist" / "breastmnist.npz").is_file()
    assert listing(isolated_cache / "datasets" / "testsector" / "breastmnist") == []


def test_directory_mirror_of_real_retinamnist_loads_official_splits(shared_data, isolated_cache):
    spec = dataset([DataFile(filename="retinamnist.npz", url=f"{UNREACHABLE}/retinamnist.npz",
                             hash="md5:bd4c0672f1bba3e3a89f0e4e876791e4")],
                   name="retinamnist", task="image", loader="npz_images", mirror_subdir="medmnist")
    grades = LabelMap.from_names(["0", "1", "2", "3", "4"])

    splits, _ = load_splits(spec, label_map=grades, mirror=str(shared_data), progress=False)

    assert {k: len(v) for k, v in splits.items()} == {"train": 1080, "validation": 120, "test": 400}
    assert np.bincount(splits["test"].labels).tolist() == [174, 46, 92, 68, 20]
    assert splits["train"].inputs[0].shape == (28, 28, 3)


# -- labels --------------------------------------------------------------------------------


def raw(labels, name="f.csv") -> RawSplit:
    return RawSplit(inputs=[f"x{i}" for i in range(len(labels))], labels=list(labels),
                    sources=[f"{name}:{i + 2}" for i in range(len(labels))])


def test_encode_maps_names_to_int64_ids():
    split, lm = encode(raw(["b", "a", "b"]), LabelMap.from_names(["a", "b"]))
    assert split.labels.dtype == np.int64 and split.labels.tolist() == [1, 0, 1]
    assert lm.names == ["a", "b"]


def test_encode_refuses_unknown_labels_with_file_and_line():
    with pytest.raises(DataError) as err:
        encode(raw(["a", "zzz", "yyy"]), LabelMap.from_names(["a", "b"]))
    message = str(err.value)
    assert message.startswith("f.csv:3: unknown label 'zzz' (known: a, b)")
    assert "1 more unknown label(s): yyy" in message and "--extend-labels" in message


def test_encode_extends_the_label_map_when_told():
    base = LabelMap.from_names(["neg", "pos"], positive="pos")
    split, lm = encode(raw(["pos", "new", "neg", "other", "new"]), base, extend=True)
    assert lm.names == ["neg", "pos", "new", "other"] and lm.positive == "pos"
    assert split.labels.tolist() == [1, 2, 0, 3, 2]


def test_encode_checks_int_labels_against_the_range():
    split, _ = encode(raw([0, 1, np.int64(1)]), LabelMap.from_names(["a", "b"]))
    assert split.labels.tolist() == [0, 1, 1]
    with pytest.raises(DataError, match=r"f\.csv:3: label id 2 is out of range for 2 classes"):
        encode(raw([0, 2]), LabelMap.from_names(["a", "b"]))


# -- carving and subsets -------------------------------------------------------------------


def make_split(counts: list[int]) -> Split:
    labels = np.concatenate([np.full(c, i, dtype=np.int64) for i, c in enumerate(counts)])
    return Split(inputs=[f"t{i}" for i in range(len(labels))], labels=labels, sources=[f"f:{i}" for i in range(len(labels))])


def test_carve_validation_is_stratified_disjoint_and_deterministic():
    whole = make_split([80, 15, 5])
    train, val = carve_validation(whole, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    assert np.bincount(val.labels).tolist() == [16, 3, 1]
    assert sorted(train.sources + val.sources) == sorted(whole.sources)
    assert set(train.sources).isdisjoint(val.sources)
    again_train, again_val = carve_validation(whole, 0.2, seed=3)
    assert again_val.sources == val.sources and again_train.inputs == train.inputs
    _, other = carve_validation(whole, 0.2, seed=4)
    assert other.sources != val.sources


def test_carve_validation_explains_a_class_too_small_to_split():
    with pytest.raises(DataError, match="cannot carve a stratified validation split"):
        carve_validation(make_split([10, 1]), 0.2, seed=0)


def test_subset_is_stratified_deterministic_and_handles_tiny_sizes():
    whole = make_split([60, 30, 10])
    part = subset(whole, 20, seed=1)
    assert np.bincount(part.labels).tolist() == [12, 6, 2]
    assert part.sources == subset(whole, 20, seed=1).sources
    assert part.sources == sorted(part.sources, key=lambda s: int(s.split(":")[1]))  # original order kept
    assert len(subset(whole, 2, seed=0)) == 2  # fewer than the number of classes still works
    assert subset(whole, 0, seed=0) is whole and subset(whole, 1000, seed=0) is whole


def test_subset_of_tabular_inputs_keeps_columns_aligned():
    split = Split(inputs={"age": np.arange(10.0), "job": np.array(list("abcdefghij"), dtype=object)},
                  labels=np.array([0, 1] * 5, dtype=np.int64), sources=[f"f:{i}" for i in range(10)])
    part = subset(split, 4, seed=0)
    rows = [int(s.split(":")[1]) for s in part.sources]
    assert part.inputs["age"].tolist() == [float(r) for r in rows]
    assert part.inputs["job"].tolist() == [list("abcdefghij")[r] for r in rows]


def test_join_splits_keeps_order_for_columns_and_lists():
    a = Split(inputs={"age": np.array([1.0, 2.0]), "job": np.array(["x", None], dtype=object)},
              labels=np.array([0, 1]), sources=["f:1", "f:2"])
    b = Split(inputs={"age": np.array([3.0]), "job": np.array(["z"], dtype=object)}, labels=np.array([1]), sources=["g:1"])
    joined = join_splits([a, b])
    assert joined.inputs["age"].tolist() == [1.0, 2.0, 3.0] and joined.inputs["job"].tolist() == ["x", None, "z"]
    assert joined.labels.tolist() == [0, 1, 1] and joined.sources == ["f:1", "f:2", "g:1"]
    texts = join_splits([Split(["p", "q"], np.array([0, 1]), ["t:1", "t:2"]), Split(["r"], np.array([2]), ["v:1"])])
    assert texts.inputs == ["p", "q", "r"] and texts.labels.tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="different columns"):
        join_splits([a, Split(inputs={"age": np.array([3.0])}, labels=np.array([1]), sources=["g:1"])])


# -- load_splits from local paths ----------------------------------------------------------


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    path.write_text(",".join(header) + "\n" + "".join(f"{t},{lbl}\n" for t, lbl in rows))
    return path


def test_load_splits_reads_a_local_csv_and_carves_validation(tmp_path):
    rows = [(f"sentence {i}", "a" if i % 2 else "b") for i in range(40)]
    path = write_csv(tmp_path / "mine.csv", rows)
    splits, lm = load_splits(path, label_map=LabelMap.from_names(["a", "b"]), task="text", seed=0, validation_fraction=0.25)
    assert set(splits) == {"train", "validation"}  # no test split: allowed
    assert len(splits["validation"]) == 10 and np.bincount(splits["validation"].labels).tolist() == [5, 5]
    assert lm.names == ["a", "b"]


def test_load_splits_refuses_unknown_labels_unless_extended(tmp_path):
    path = write_csv(tmp_path / "mine.csv", [(f"s{i}", "a" if i % 2 else "c") for i in range(20)])
    with pytest.raises(DataError, match=r"mine\.csv:2: unknown label 'c'.*--extend-labels"):
        load_splits(path, label_map=LabelMap.from_names(["a", "b"]), task="text")
    _, lm = load_splits(path, label_map=LabelMap.from_names(["a", "b"]), task="text", extend_labels=True)
    assert lm.names == ["a", "b", "c"]


def test_load_splits_carves_a_test_split_when_asked(tmp_path):
    path = write_csv(tmp_path / "mine.csv", [(f"s{i}", "a" if i % 2 else "b") for i in range(100)])
    splits, _ = load_splits(path, label_map=LabelMap.from_names(["a", "b"]), loader="text_table",
                            options={"test_fraction": 0.2}, validation_fraction=0.125)
    assert {k: len(v) for k, v in splits.items()} == {"train": 70, "validation": 10, "test": 20}


def test_guess_loader_by_suffix_shape_and_task(tmp_path):
    csv_file = write_csv(tmp_path / "x.csv", [("a", "b")])
    assert guess_loader(csv_file, task="text") == "text_table"
    assert guess_loader(csv_file, task="tabular") == "tabular_csv"
    with pytest.raises(DataError, match="several loaders could read this.*tabular_csv, text_table.*--loader"):
        guess_loader(csv_file)
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match=r"no loader reads this.*--loader NAME; loaders: .*npz_images"):
        guess_loader(tmp_path / "x.parquet")
    folder = tmp_path / "images"
    (folder / "cat").mkdir(parents=True)
    assert guess_loader(folder, task="image") == "image_folder"
    (tmp_path / "d.npz").write_bytes(b"")
    assert guess_loader(tmp_path / "d.npz") == "npz_images"


def test_load_splits_local_npz_keeps_the_official_validation_split(shared_data):
    lm = LabelMap.from_names(["malignant", "normal_or_benign"], positive="malignant")
    splits, _ = load_splits(shared_data / "medmnist" / "breastmnist.npz", label_map=lm,
                            options={"label_names": ["malignant", "normal_or_benign"]})
    assert {k: len(v) for k, v in splits.items()} == {"train": 546, "validation": 78, "test": 156}
    assert np.bincount(splits["train"].labels).tolist() == [147, 399]


def test_load_splits_errors_name_the_path_and_the_loaders(tmp_path):
    with pytest.raises(DataError, match="data path does not exist"):
        load_splits(tmp_path / "missing.csv", label_map=LabelMap.from_names(["a"]))
    with pytest.raises(DataError, match="unknown loader 'nope'; loaders: .*text_table"):
        load_splits(write_csv(tmp_path / "x.csv", [("a", "a")]), label_map=LabelMap.from_names(["a"]), loader="nope")


# -- the command line ----------------------------------------------------------------------

PLUGIN = f"""
from bigmodel.core import DataFile, DatasetSpec, hookimpl

@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="banking77", sector="datatest", task="text", licence="CC-BY-4.0",
                         loader="text_table", loader_options={{"label_column": "category"}}, mirror_subdir="banking77",
                         files=[DataFile(filename=n, url="{UNREACHABLE}/" + n, hash="sha256:" + h)
                                for n, h in {BANKING77_SHA256!r}.items()]))
    register(DatasetSpec(name="breast", sector="datatest", task="image", licence="CC-BY-4.0", loader="npz_images",
                         mirror_subdir="medmnist",
                         files=[DataFile(filename="breastmnist.npz", url="{UNREACHABLE}/breastmnist.npz",
                                         hash="md5:750601b1f35ba3300ea97c75c52ff8f6")]))
"""


def test_cli_data_list_and_fetch(plugin_site, shared_data, isolated_cache):
    plugin_site.add("datatest", PLUGIN)
    runner = CliRunner()

    listed = runner.invoke(cli, ["data", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["key"]: r for r in json.loads(listed.output)}
    assert rows["datatest/banking77"]["cached"] is False
    assert rows["datatest/banking77"]["licence"] == "CC-BY-4.0" and rows["datatest/banking77"]["task"] == "text"
    assert [f["filename"] for f in rows["datatest/banking77"]["files"]] == ["train.csv", "test.csv"]

    fetched = runner.invoke(cli, ["data", "fetch", "datatest/banking77", "--mirror", str(shared_data), "--quiet"])
    assert fetched.exit_code == 0, fetched.output
    folder = Path(fetched.output.strip())
    assert folder == isolated_cache / "datasets" / "datatest" / "banking77" and listing(folder) == ["test.csv", "train.csv"]

    text = runner.invoke(cli, ["data", "list"])
    assert text.exit_code == 0
    line = next(row for row in text.output.splitlines() if row.startswith("datatest/banking77"))
    assert "cached" in line and "not cached" not in line and "CC-BY-4.0" in line

    bad = runner.invoke(cli, ["data", "fetch", "datatest/breast", "--mirror", str(shared_data), "--quiet"])
    assert bad.exit_code == 1
    assert "checksum mismatch" in bad.output and "750601b1f35ba3300ea97c75c52ff8f6" in bad.output

    unknown = runner.invoke(cli, ["data", "fetch", "datatest/nope"])
    assert unknown.exit_code == 1 and "unknown dataset 'datatest/nope'" in unknown.output


def test_cli_data_list_imports_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import sys\nfrom bigmodel.cli import cli\n"
        "try:\n    cli(['data', 'list'], prog_name='bigmodel')\nexcept SystemExit:\n    pass\n"
        "print('HEAVY=' + ','.join(m for m in ('torch', 'sklearn', 'pooch', 'pydicom', 'PIL', 'matplotlib') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "BIGMODEL_LOAD_PLUGINS": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY="
