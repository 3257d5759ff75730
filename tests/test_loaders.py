"""The generic loaders on small files written here and on the real shared data; DICOM on pydicom's real test files."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bigmodel.core.data import DataError
from bigmodel.core.loaders import (
    load_dicom_folder,
    load_image_folder,
    load_npz_images,
    load_tabular_csv,
    load_text_table,
    read_dicom,
)

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402


def dicom_file(name: str) -> Path:
    """One of pydicom's (or pydicom-data's) real test files, by single name (never the plural API)."""
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is missing: install the test extra (pydicom-data)"
    return Path(path)


def linear_window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR) mapped to [0, 1], written out independently of pydicom."""
    return np.clip((values - (centre - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


# -- text_table ----------------------------------------------------------------------------


def test_text_csv_with_quoted_multiline_fields_keeps_first_line_numbers(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"line one\nline two",a\nplain,b\n"say ""hi""",a\n')
    split = load_text_table(path, options={})["train"]
    assert split.inputs == ["line one\nline two", "plain", 'say "hi"']
    assert split.labels == ["a", "b", "a"]
    assert split.sources == [f"{path}:2", f"{path}:4", f"{path}:5"]


def test_text_directory_splits_and_configurable_columns(tmp_path):
    (tmp_path / "train.csv").write_text("utterance,intent\nhello,greet\n")
    (tmp_path / "val.csv").write_text("utterance,intent\nbye,leave\n")
    (tmp_path / "test.jsonl").write_text('{"utterance": "hey", "intent": "greet"}\n\n{"utterance": "ciao", "intent": "leave"}\n')
    out = load_text_table(tmp_path, options={"text_column": "utterance", "label_column": "intent"})
    assert sorted(out) == ["test", "train", "validation"]
    assert out["validation"].inputs == ["bye"]
    assert out["test"].labels == ["greet", "leave"] and out["test"].sources[1] == f"{tmp_path / 'test.jsonl'}:3"


def test_text_json_array_and_files_option(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"text": "x", "label": "p"}, {"text": "y", "label": 1}]))
    out = load_text_table(tmp_path, options={"files": {"test": "a.json"}})
    assert list(out) == ["test"] and out["test"].labels == ["p", 1]
    assert out["test"].sources == [f"{tmp_path / 'a.json'}[0]", f"{tmp_path / 'a.json'}[1]"]


@pytest.mark.parametrize(
    "content, options, message",
    [
        ("text,category\nhi,a\n", {}, r"train\.csv:2: no column 'label' \(columns: text, category\); set the label_column option"),
        ("text,label\nhi,a\n  ,b\n", {}, r"train\.csv:3: empty text in column 'text'"),
        ("text,label\nhi,a\nho,\n", {}, r"train\.csv:3: missing label in column 'label'"),
        ("text,label\nhi,a\nho,b,c\n", {}, r"train\.csv:3: expected 2 fields \(text, label\), got 3"),
        ("", {}, r"train\.csv: empty file"),
        ("text,label\nhi,a\n", {"colour": "red"}, r"text_table: unknown option 'colour'"),
    ],
)
def test_text_bad_rows_name_file_and_line(tmp_path, content, options, message):
    path = tmp_path / "train.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_text_table(path, options=options)


def test_text_bad_jsonl_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: invalid JSON"):
        load_text_table(path, options={})


def test_text_directory_without_known_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"no train\.csv .*found \['notes\.txt'\].*'files' option"):
        load_text_table(tmp_path, options={})


def test_real_banking77(shared_data):
    out = load_text_table(shared_data / "banking77", options={"label_column": "category"})
    assert len(out["train"]) == 10003 and len(out["test"]) == 3080
    categories = json.loads((shared_data / "banking77" / "categories.json").read_text())
    assert set(out["train"].labels) == set(categories) and len(categories) == 77
    multiline = [t for t in out["train"].inputs if "\n" in t]
    assert multiline, "BANKING77 has quoted texts spanning several lines"


# -- image folders -------------------------------------------------------------------------


def save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder_per_class(tmp_path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8)
    rgb = np.dstack([grey, grey // 2, grey // 3])
    save_png(tmp_path / "benign" / "a.png", grey)
    save_png(tmp_path / "malignant" / "b.png", rgb)
    from PIL import Image

    Image.fromarray(rgb).save(tmp_path / "malignant" / "c.jpg", quality=95)

    split = load_image_folder(tmp_path, options={})["train"]

    assert split.labels == ["benign", "malignant", "malignant"]
    assert split.sources == [str(tmp_path / "benign" / "a.png"), str(tmp_path / "malignant" / "b.png"), str(tmp_path / "malignant" / "c.jpg")]
    assert np.array_equal(split.inputs[0], grey) and split.inputs[0].dtype == np.uint8
    assert np.array_equal(split.inputs[1], rgb)
    assert split.inputs[2].shape == (6, 8, 3)


def test_image_folder_with_split_folders_and_dicom(tmp_path):
    img = np.full((4, 4), 200, dtype=np.uint8)
    for split in ("train", "val", "test"):
        save_png(tmp_path / split / "a" / "x.png", img)
        save_png(tmp_path / split / "b" / "y.png", img)
    shutil.copy(dicom_file("CT_small.dcm"), tmp_path / "train" / "a" / "ct.dcm")
    out = load_image_folder(tmp_path, options={"window": [40, 400]})
    assert sorted(out) == ["test", "train", "validation"]
    assert out["train"].labels == ["a", "a", "b"]
    ct = out["train"].inputs[0]
    assert ct.shape == (128, 128) and ct.dtype == np.float32 and 0.0 <= ct.min() and ct.max() <= 1.0


def test_image_folder_unreadable_image_names_the_file(tmp_path):
    save_png(tmp_path / "a" / "ok.png", np.zeros((2, 2), np.uint8))
    bad = tmp_path / "b" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=rf"{bad}: unreadable image"):
        load_image_folder(tmp_path, options={})


@pytest.mark.parametrize("setup, message", [
    (lambda root: (root / "a").mkdir() or (root / "a" / "notes.txt").write_text("x"), r"notes\.txt: not an image file"),
    (lambda root: (root / "a").mkdir(), r"a: class folder holds no images"),
    (lambda root: (root / "f.png").write_bytes(b""), r"no class sub-directories"),
    (lambda root: (root / "train" / "x").mkdir(parents=True) or (root / "cats").mkdir(), r"mixes split folders \(train\) with other folders \(cats\)"),
])
def test_image_folder_layout_errors(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(DataError, match=message):
        load_image_folder(tmp_path, options={})


# -- npz -----------------------------------------------------------------------------------


def test_npz_with_column_labels_and_names(tmp_path):
    path = tmp_path / "d.npz"
    images = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3)
    np.savez(path, train_images=images, train_labels=np.array([[0], [1], [1], [0], [1]]),
             test_images=images[:2], test_labels=np.array([1, 0]))
    out = load_npz_images(path, options={})
    assert sorted(out) == ["test", "train"]
    assert out["train"].labels == [0, 1, 1, 0, 1] and np.array_equal(out["train"].inputs[3], images[3])
    assert out["test"].sources == [f"{path}[test 0]", f"{path}[test 1]"]
    named = load_npz_images(path, options={"label_names": ["malignant", "benign"]})
    assert named["test"].labels == ["benign", "malignant"]


def test_npz_errors(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((2, 3, 3)), y_train=np.zeros(2))
    with pytest.raises(DataError, match=r"expected keys train_images, train_labels .*found \['x_train', 'y_train'\]"):
        load_npz_images(path, options={})
    np.savez(path, train_images=np.zeros((2, 3, 3)), train_labels=np.zeros((2, 3), dtype=int))
    with pytest.raises(DataError, match=r"train_labels\]: expected shape \(N,\) or \(N, 1\), got \(2, 3\)"):
        load_npz_images(path, options={})
    np.savez(path, train_images=np.zeros((2, 3, 3)), train_labels=np.array([0, 2]))
    with pytest.raises(DataError, match=r"d\.npz\[train 1\]: label 2 has no entry in label_names"):
        load_npz_images(path, options={"label_names": ["a", "b"]})
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable npz file"):
        load_npz_images(path, options={})


def test_real_breastmnist(shared_data):
    out = load_npz_images(shared_data / "medmnist" / "breastmnist.npz", options={})
    assert {k: len(v) for k, v in out.items()} == {"train": 546, "validation": 78, "test": 156}
    assert out["train"].inputs[0].shape == (28, 28) and out["train"].inputs[0].dtype == np.uint8
    assert Counter(out["train"].labels) == {0: 147, 1: 399}


# -- tabular -------------------------------------------------------------------------------

GERMAN_COLUMNS = [
    "checking", "duration", "history", "purpose", "amount", "savings", "employment", "rate", "personal", "debtors",
    "residence", "property", "age", "plans", "housing", "credits", "job", "liable", "telephone", "foreign", "class",
]


def test_tabular_csv_types_and_missing_values(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("age,job,income,y\n30,clerk,100.5,yes\n?,NA,,no\n41,,7,yes\n")
    split = load_tabular_csv(path, options={"target": "y", "numeric": ["age", "income"], "categorical": ["job"]})["train"]
    age, income, job = split.inputs["age"], split.inputs["income"], split.inputs["job"]
    assert age.dtype == np.float64 and age[0] == 30 and np.isnan(age[1]) and age[2] == 41
    assert np.isnan(income[1]) and income[0] == 100.5
    assert job.dtype == object and job.tolist() == ["clerk", None, None]
    assert split.labels == ["yes", "no", "yes"] and split.sources[1] == f"{path}:3"


@pytest.mark.parametrize("content, options, message", [
    ("age,y\nabc,1\n", {"numeric": ["age"]}, r"t\.csv:2: column 'age': 'abc' is not a number"),
    ("age,z\n1,1\n", {"numeric": ["age"]}, r"t\.csv: no target column 'y' \(columns: age, z\)"),
    ("age,y\n1,1\n", {"numeric": ["age", "height"]}, r"declared numeric column 'height' is absent"),
    ("age,y\n1,?\n", {"numeric": ["age"]}, r"t\.csv:2: missing target in column 'y'"),
    ("age,y\n1,1\n2\n", {"numeric": ["age"]}, r"t\.csv:3: expected 2 fields, got 1"),
    ("age,y\n1,1\n", {}, r"declare feature columns .*columns: age, y"),
    ("age,age,y\n1,2,1\n", {"numeric": ["age"]}, r"t\.csv: duplicate column names \['age'\]"),
    ("age;y\n1;1\n", {"numeric": ["age"], "delimiter": ";;"}, r"delimiter must be one character, got ';;'"),
])
def test_tabular_errors(tmp_path, content, options, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_tabular_csv(path, options={"target": "y", **options})


def test_tabular_tsv_and_label_names(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("age\tjob\ty\n30\tclerk, senior\t1\n40\tNA\t2\n")
    split = load_tabular_csv(path, options={"target": "y", "numeric": ["age"], "categorical": ["job"],
                                            "label_names": {"1": "good", "2": "bad"}})["train"]
    assert split.inputs["job"].tolist() == ["clerk, senior", None] and split.labels == ["good", "bad"]
    path.write_text("age\tjob\ty\n30\tclerk\t3\n")
    with pytest.raises(DataError, match=r"t\.tsv:2: target value '3' has no entry in label_names \(1, 2\)"):
        load_tabular_csv(path, options={"target": "y", "numeric": ["age"], "label_names": {"1": "good", "2": "bad"}})


def test_tabular_requires_a_target(tmp_path):
    with pytest.raises(DataError, match="option 'target'"):
        load_tabular_csv(tmp_path, options={"numeric": ["a"]})


def test_real_german_credit_whitespace_headerless(shared_data):
    numeric = ["duration", "amount", "rate", "residence", "age", "credits", "liable"]
    categorical = [c for c in GERMAN_COLUMNS[:-1] if c not in numeric]
    out = load_tabular_csv(shared_data / "german_credit" / "german.data", options={
        "target": "class", "delimiter": "whitespace", "columns": GERMAN_COLUMNS,
        "numeric": numeric, "categorical": categorical, "label_names": {1: "good", 2: "bad"},
    })
    split = out["train"]
    assert len(GERMAN_COLUMNS) == 21 and len(split) == 1000
    assert Counter(split.labels) == {"good": 700, "bad": 300}
    assert split.inputs["duration"][:2].tolist() == [6.0, 48.0] and split.inputs["age"][0] == 67.0
    assert split.inputs["checking"][:2].tolist() == ["A11", "A12"]
    assert set(split.inputs) == set(numeric) | set(categorical)


# -- DICOM (real files from pydicom and pydicom-data) -----------------------------------------


def test_dicom_rescale_is_applied_before_windowing(tmp_path):
    path = dicom_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    raw = ds.pixel_array.astype(np.float64)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    assert intercept == -1024  # a real CT in Hounsfield units needs the rescale

    soft_tissue = read_dicom(path, window=(40, 400))
    np.testing.assert_allclose(soft_tissue, linear_window(raw * slope + intercept, 40, 400), atol=1e-6)
    assert not np.allclose(soft_tissue, linear_window(raw, 40, 400), atol=1e-2)

    ds.RescaleSlope = 2
    changed = tmp_path / "ct_slope2.dcm"
    ds.save_as(changed)
    np.testing.assert_allclose(read_dicom(changed, window=(40, 400)), linear_window(raw * 2 + intercept, 40, 400), atol=1e-6)


def test_dicom_window_from_the_file_and_clipping():
    path = dicom_file("MR_small.dcm")
    ds = pydicom.dcmread(path)
    raw = ds.pixel_array.astype(np.float64)
    out = read_dicom(path)
    np.testing.assert_allclose(out, linear_window(raw, float(ds.WindowCenter), float(ds.WindowWidth)), atol=1e-6)
    narrow = read_dicom(path, window=(float(np.median(raw)), 10))
    assert narrow.dtype == np.float32 and narrow.min() == 0.0 and narrow.max() == 1.0
    assert ((narrow == 0) | (narrow == 1)).mean() > 0.9


def test_dicom_monochrome1_is_inverted(tmp_path):
    path = dicom_file("RG1_UNCR.dcm")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    expected = 1.0 - linear_window(ds.pixel_array.astype(np.float64), float(ds.WindowCenter), float(ds.WindowWidth))
    np.testing.assert_allclose(read_dicom(path), expected, atol=1e-6)

    mr = pydicom.dcmread(dicom_file("MR_small.dcm"))
    mr.PhotometricInterpretation = "MONOCHROME1"
    flipped = tmp_path / "mr_mono1.dcm"
    mr.save_as(flipped)
    np.testing.assert_allclose(read_dicom(flipped), 1.0 - read_dicom(dicom_file("MR_small.dcm")), atol=1e-6)


def test_dicom_multiframe_first_or_all():
    path = dicom_file("emri_small.dcm")
    first = read_dicom(path)
    frames = read_dicom(path, frames="all")
    assert first.shape == (64, 64) and frames.shape == (10, 64, 64)
    pixels = pydicom.dcmread(path).pixel_array.astype(np.float64)
    assert not np.array_equal(pixels[0], pixels[5])  # the frames really differ
    # no window in the file: min-max over what is returned (the first frame, or the whole stack)
    np.testing.assert_allclose(first, (pixels[0] - pixels[0].min()) / np.ptp(pixels[0]), atol=1e-6)
    np.testing.assert_allclose(frames, (pixels - pixels.min()) / np.ptp(pixels), atol=1e-6)


def test_dicom_colour_image():
    out = read_dicom(dicom_file("US1_UNCR.dcm"))
    assert out.shape == (480, 640, 3) and out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    with pytest.raises(DataError, match="a window applies to monochrome images"):
        read_dicom(dicom_file("US1_UNCR.dcm"), window=(100, 50))


def test_dicom_without_pixel_data_is_refused(tmp_path):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Test^NoPixels"
    ds.Modality = "OT"
    path = tmp_path / "nopixels.dcm"
    ds.save_as(path, enforce_file_format=True)

    with pytest.raises(DataError, match=rf"^{path}: DICOM has no pixel data$"):
        read_dicom(path)
    with pytest.raises(DataError, match="DICOM has no pixel data"):
        read_dicom(dicom_file("rtplan.dcm"))


def test_non_dicom_and_bad_options(tmp_path):
    other = tmp_path / "scan.dcm"
    other.write_text("hello")
    with pytest.raises(DataError, match=rf"{other}: not a DICOM file"):
        read_dicom(other)
    with pytest.raises(DataError, match="frames must be 'first' or 'all'"):
        read_dicom(dicom_file("CT_small.dcm"), frames="middle")
    with pytest.raises(DataError, match=r"window must be \[centre, width\]"):
        read_dicom(dicom_file("CT_small.dcm"), window=(40,))


def test_dicom_folder_expands_frames_and_reads_suffixless_files(tmp_path):
    (tmp_path / "normal").mkdir()
    (tmp_path / "abnormal").mkdir()
    shutil.copy(dicom_file("CT_small.dcm"), tmp_path / "normal" / "IM0001")  # PACS exports often have no suffix
    shutil.copy(dicom_file("emri_small.dcm"), tmp_path / "abnormal" / "cine.dcm")

    first = load_dicom_folder(tmp_path, options={})["train"]
    assert first.labels == ["abnormal", "normal"] and first.inputs[0].shape == (64, 64)

    every = load_dicom_folder(tmp_path, options={"frames": "all"})["train"]
    assert every.labels == ["abnormal"] * 10 + ["normal"]
    assert every.sources[3] == f"{tmp_path / 'abnormal' / 'cine.dcm'}[frame 3]"

    (tmp_path / "normal" / "notes.dcm").write_text("x")
    with pytest.raises(DataError, match=r"notes\.dcm: not a DICOM file"):
        load_dicom_folder(tmp_path, options={})
