"""Generic data readers, registered as built-in loaders by ``bigmodel.plugins.loaders``.

Each reader has the signature ``load(path: Path, *, options: dict) -> dict[str, RawSplit]`` with
split keys among ``"train"``, ``"validation"``, ``"test"``; labels are raw names (ints for npz
without ``label_names``), sources are ``file:line`` or ``file[index]``. Errors are
:class:`~bigmodel.core.data.DataError` naming the file and the line, index or column.
Options are documented in docs/data.md.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .data import DataError, RawSplit

__all__ = [
    "IMAGE_SUFFIXES",
    "DICOM_SUFFIXES",
    "load_text_table",
    "load_image_folder",
    "load_npz_images",
    "load_dicom_folder",
    "load_tabular_csv",
    "read_image",
    "read_dicom",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
_SPLIT_DIRS = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}
_SPLIT_STEMS = {"train": ("train",), "validation": ("validation", "val", "valid", "dev"), "test": ("test",)}


def _check_options(loader: str, options: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise DataError(f"{loader}: unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _split_files(loader: str, path: Path, options: dict[str, Any], suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Which file holds which split: the ``files`` option, a single file (train) or a directory."""
    files = options.get("files")
    if files is not None:
        if not isinstance(files, dict) or not files:
            raise DataError(f"{loader}: option 'files' must map split names to file names, got {files!r}")
        out: dict[str, Path] = {}
        for split, name in files.items():
            if split not in _SPLIT_STEMS:
                raise DataError(f"{loader}: option 'files': unknown split {split!r} (use train, validation, test)")
            file = Path(name) if Path(name).is_absolute() else (path if path.is_dir() else path.parent) / name
            if not file.is_file():
                raise DataError(f"{file}: file for the {split} split does not exist")
            out[split] = file
        return out
    if path.is_file():
        return {"train": path}
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    out = {}
    for split, stems in _SPLIT_STEMS.items():
        for stem in stems:
            found = [path / f"{stem}{s}" for s in suffixes if (path / f"{stem}{s}").is_file()]
            if found:
                out[split] = found[0]
                break
    if not out:
        present = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
        raise DataError(
            f"{path}: no train{suffixes[0]} (or validation/test) file; found {present[:20]}; "
            "set the 'files' option to name the file of each split"
        )
    return out


def _text_lines(file: Path) -> Iterator[str]:
    try:
        with open(file, encoding="utf-8-sig", newline="") as fh:
            yield from fh
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not UTF-8 text ({exc})") from None


def _csv_rows(file: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) per record; quoted fields may span several lines."""
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise DataError(f"{file}: delimiter must be one character, got {delimiter!r}")
    lines = _text_lines(file)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{file}:{start}: bad CSV ({exc})") from None
        if row and any(field.strip() for field in row):
            yield start, row


# -- text ----------------------------------------------------------------------------------


def load_text_table(path: Path, *, options: dict[str, Any]) -> dict[str, RawSplit]:
    """CSV/TSV (header row) or JSONL/JSON records with a text column and a label column.

    Options: ``text_column`` ("text"), ``label_column`` ("label"), ``files`` ({split: file}),
    ``delimiter`` ("," for .csv, tab for .tsv).
    """
    _check_options("text_table", options, {"text_column", "label_column", "files", "delimiter"})
    text_col = options.get("text_column", "text")
    label_col = options.get("label_column", "label")
    files = _split_files("text_table", Path(path), options, (".csv", ".tsv", ".jsonl", ".json"))
    out = {}
    for split, file in files.items():
        suffix = file.suffix.lower()
        if suffix in (".jsonl", ".json"):
            records = _json_records(file)
        else:
            delimiter = options.get("delimiter", "\t" if suffix == ".tsv" else ",")
            records = _csv_records(file, delimiter)
        texts, labels, sources = [], [], []
        for source, record in records:
            for column in (text_col, label_col):
                if column not in record:
                    raise DataError(
                        f"{source}: no column {column!r} (columns: {', '.join(record)}); "
                        f"set the {'text_column' if column == text_col else 'label_column'} option"
                    )
            text, label = record[text_col], record[label_col]
            if not isinstance(text, str):
                raise DataError(f"{source}: text in column {text_col!r} is {type(text).__name__}, not a string")
            if not text.strip():
                raise DataError(f"{source}: empty text in column {text_col!r}")
            if label is None or (isinstance(label, str) and not label.strip()):
                raise DataError(f"{source}: missing label in column {label_col!r}")
            if isinstance(label, str):
                label = label.strip()
            elif not isinstance(label, int) or isinstance(label, bool):
                raise DataError(f"{source}: label {label!r} in column {label_col!r} is neither a name nor an int id")
            texts.append(text)
            labels.append(label)
            sources.append(source)
        if not texts:
            raise DataError(f"{file}: no rows")
        out[split] = RawSplit(inputs=texts, labels=labels, sources=sources)
    return out


def _csv_records(file: Path, delimiter: str) -> Iterator[tuple[str, dict[str, Any]]]:
    rows = _csv_rows(file, delimiter)
    try:
        _, header = next(rows)
    except StopIteration:
        raise DataError(f"{file}: empty file (expected a header row)") from None
    header = [h.strip() for h in header]
    for line, row in rows:
        if len(row) != len(header):
            raise DataError(f"{file}:{line}: expected {len(header)} fields ({', '.join(header)}), got {len(row)}")
        yield f"{file}:{line}", dict(zip(header, row))


def _json_records(file: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if file.suffix.lower() == ".json":
        try:
            data = json.loads("".join(_text_lines(file)))
        except json.JSONDecodeError as exc:
            raise DataError(f"{file}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(data, list):
            raise DataError(f"{file}: expected a JSON array of records, got {type(data).__name__}")
        items = ((f"{file}[{i}]", item) for i, item in enumerate(data))
    else:
        items = _jsonl_items(file)
    for source, item in items:
        if not isinstance(item, dict):
            raise DataError(f"{source}: expected a JSON object, got {type(item).__name__}")
        yield source, item


def _jsonl_items(file: Path) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(_text_lines(file), start=1):
        if not line.strip():
            continue
        try:
            yield f"{file}:{number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{file}:{number}: invalid JSON ({exc.msg})") from None


# -- images --------------------------------------------------------------------------------


def read_image(path: Path) -> np.ndarray:
    """Decode an image file with PIL: uint8 HxW (grey) or HxWx3 (colour); 16-bit grey as float32 [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
            if mode == "F":
                raise DataError(f"{path}: floating-point images (mode F) are not supported; save as 8- or 16-bit")
            if mode in ("1", "L", "LA"):
                return np.asarray(image.convert("L"), dtype=np.uint8)
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None


def _window_dataset(center: float, width: float, function: str = "LINEAR"):
    """A minimal VOI dataset whose windowing output spans 0..65535 (thresholds need only C/W)."""
    from pydicom.dataset import Dataset

    voi = Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.BitsStored = 16
    voi.PixelRepresentation = 0
    voi.WindowCenter = float(center)
    voi.WindowWidth = float(width)
    voi.VOILUTFunction = function
    return voi


def _first(value: Any) -> float:
    from pydicom.multival import MultiValue

    return float(value[0] if isinstance(value, (list, tuple, MultiValue)) else value)


def read_dicom(
    path: Path | str,
    *,
    window: tuple[float, float] | list[float] | None = None,
    frames: str = "first",
) -> np.ndarray:
    """Pixel data of a DICOM file as float32 in [0, 1], high values bright.

    Monochrome: Modality LUT / Rescale Slope+Intercept (``apply_modality_lut``), then the window
    ``(centre, width)`` given here, else the file's Window Centre/Width (first view), else its VOI LUT
    Sequence, else min-max over the pixels; MONOCHROME1 is inverted. Colour images are scaled by their
    bit depth. Returns HxW (HxWx3), or FxHxW (FxHxWx3) with ``frames="all"``.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

    path = Path(path)
    if frames not in ("first", "all"):
        raise DataError(f"{path}: frames must be 'first' or 'all', got {frames!r}")
    if window is not None:
        if not isinstance(window, (list, tuple)) or len(window) != 2:
            raise DataError(f"{path}: window must be [centre, width], got {window!r}")
        if float(window[1]) < 1:
            raise DataError(f"{path}: window width must be >= 1, got {window[1]!r}")
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise DataError(f"{path}: not a DICOM file ({exc})") from None
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: unreadable DICOM file ({type(exc).__name__}: {exc})") from None
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DataError(f"{path}: DICOM has no pixel data")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for missing decoders / bad data
        raise DataError(f"{path}: cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from None

    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if n_frames == 1:
        pixels = pixels[np.newaxis]
    if frames == "first":
        pixels = pixels[:1]

    if samples > 1:
        if window is not None:
            raise DataError(f"{path}: a window applies to monochrome images; this one has {samples} samples per pixel")
        bits = int(ds.get("BitsStored", 8) or 8)
        out = pixels.astype(np.float32) / float(2**bits - 1)
    else:
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
        values = apply_modality_lut(pixels, ds).astype(np.float64)
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        if window is not None:
            out = apply_windowing(values, _window_dataset(window[0], window[1], function)) / 65535.0
        elif ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
            voi = _window_dataset(_first(ds.WindowCenter), _first(ds.WindowWidth), function)
            out = apply_windowing(values, voi) / 65535.0
        elif ds.get("VOILUTSequence"):
            depth = int(ds.VOILUTSequence[0].LUTDescriptor[2])
            out = apply_voi(values.astype(np.int64), ds).astype(np.float64) / float(2**depth - 1)
        else:
            low, high = float(values.min()), float(values.max())
            out = (values - low) / (high - low) if high > low else np.zeros_like(values)
        out = np.clip(out, 0.0, 1.0)
        if photometric == "MONOCHROME1":
            out = 1.0 - out
        out = out.astype(np.float32)
    return out[0] if frames == "first" else out


def _image_options(loader: str, options: dict[str, Any]) -> tuple[Any, str]:
    _check_options(loader, options, {"window", "frames"})
    frames = options.get("frames", "first")
    if frames not in ("first", "all"):
        raise DataError(f"{loader}: option 'frames' must be 'first' or 'all', got {frames!r}")
    return options.get("window"), frames


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_folder(root: Path, *, loader: str, suffixes: tuple[str, ...], dicom_any_suffix: bool,
                 window: Any, frames: str) -> RawSplit:
    classes = _class_dirs(root)
    if not classes:
        raise DataError(f"{root}: no class sub-directories (expected {root}/<class>/<image files>)")
    inputs: list[np.ndarray] = []
    labels: list[str] = []
    sources: list[str] = []
    for class_dir in classes:
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(class_dir).parts))
        if not files:
            raise DataError(f"{class_dir}: class folder holds no images")
        for file in files:
            suffix = file.suffix.lower()
            is_dicom = suffix in DICOM_SUFFIXES or (dicom_any_suffix and suffix == "")
            if not is_dicom and suffix not in suffixes:
                raise DataError(f"{file}: not an image file for {loader} (expected {', '.join(suffixes + DICOM_SUFFIXES)})")
            if is_dicom:
                array = read_dicom(file, window=window, frames=frames)
                if frames == "all":
                    for i, frame in enumerate(array):
                        inputs.append(frame)
                        labels.append(class_dir.name)
                        sources.append(f"{file}[frame {i}]")
                    continue
            else:
                array = read_image(file)
            inputs.append(array)
            labels.append(class_dir.name)
            sources.append(str(file))
    return RawSplit(inputs=inputs, labels=labels, sources=sources)


def _folder_splits(path: Path, *, loader: str, suffixes: tuple[str, ...], dicom_any_suffix: bool,
                   window: Any, frames: str) -> dict[str, RawSplit]:
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: {loader} reads a directory with one sub-directory per class")
    subdirs = _class_dirs(path)
    split_dirs = [d for d in subdirs if d.name.lower() in _SPLIT_DIRS]
    if not split_dirs:
        return {"train": _read_folder(path, loader=loader, suffixes=suffixes, dicom_any_suffix=dicom_any_suffix,
                                      window=window, frames=frames)}
    others = [d.name for d in subdirs if d not in split_dirs]
    if others:
        raise DataError(f"{path}: mixes split folders ({', '.join(d.name for d in split_dirs)}) with other folders ({', '.join(others)})")
    out: dict[str, RawSplit] = {}
    for split_dir in split_dirs:
        split = _SPLIT_DIRS[split_dir.name.lower()]
        if split in out:
            raise DataError(f"{split_dir}: a second folder for the {split} split")
        out[split] = _read_folder(split_dir, loader=loader, suffixes=suffixes, dicom_any_suffix=dicom_any_suffix,
                                  window=window, frames=frames)
    return out


def load_image_folder(path: Path, *, options: dict[str, Any]) -> dict[str, RawSplit]:
    """``dir/<class>/*.png|jpg|…|dcm`` or ``dir/{train,val|validation,test}/<class>/…``; labels are folder names.

    Options (DICOM files): ``window`` ([centre, width]), ``frames`` ("first" or "all": one example per frame).
    """
    window, frames = _image_options("image_folder", options)
    return _folder_splits(Path(path), loader="image_folder", suffixes=IMAGE_SUFFIXES, dicom_any_suffix=False,
                          window=window, frames=frames)


def load_dicom_folder(path: Path, *, options: dict[str, Any]) -> dict[str, RawSplit]:
    """Like ``image_folder`` for DICOM files (``.dcm``, ``.dicom`` or no suffix); options ``window``, ``frames``."""
    window, frames = _image_options("dicom_folder", options)
    return _folder_splits(Path(path), loader="dicom_folder", suffixes=(), dicom_any_suffix=True,
                          window=window, frames=frames)


def load_npz_images(path: Path, *, options: dict[str, Any]) -> dict[str, RawSplit]:
    """MedMNIST-style npz: ``{train,val,test}_{images,labels}`` (train required), labels (N,) or (N, 1).

    Option ``label_names``: a list (or {id: name}) turning int labels into names; without it labels stay ints.
    """
    _check_options("npz_images", options, {"label_names"})
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.npz"))
        if len(found) != 1:
            raise DataError(f"{path}: npz_images needs one .npz file, found {[p.name for p in found]}")
        path = found[0]
    names = options.get("label_names")
    if isinstance(names, dict):
        names = {int(k): str(v) for k, v in names.items()}
    elif names is not None:
        names = dict(enumerate(str(n) for n in names))
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable npz file ({type(exc).__name__}: {exc})") from None
    with archive:
        keys = sorted(archive.files)
        if "train_images" not in keys or "train_labels" not in keys:
            raise DataError(f"{path}: expected keys train_images, train_labels (and val_*, test_*); found {keys}")
        out: dict[str, RawSplit] = {}
        for prefix, split in (("train", "train"), ("val", "validation"), ("test", "test")):
            present = [k for k in (f"{prefix}_images", f"{prefix}_labels") if k in keys]
            if not present:
                continue
            if len(present) == 1:
                raise DataError(f"{path}: has {present[0]} but not its pair; found {keys}")
            images, labels = archive[f"{prefix}_images"], archive[f"{prefix}_labels"]
            if images.ndim not in (3, 4):
                raise DataError(f"{path}[{prefix}_images]: expected (N, H, W) or (N, H, W, C), got shape {images.shape}")
            if labels.ndim == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            if labels.ndim != 1:
                raise DataError(f"{path}[{prefix}_labels]: expected shape (N,) or (N, 1), got {labels.shape} (multi-label is not supported)")
            if len(labels) != len(images):
                raise DataError(f"{path}: {len(images)} {prefix}_images but {len(labels)} {prefix}_labels")
            if not np.issubdtype(labels.dtype, np.integer):
                raise DataError(f"{path}[{prefix}_labels]: labels must be integers, got dtype {labels.dtype}")
            raw_labels: list = [int(v) for v in labels]
            sources = [f"{path}[{prefix} {i}]" for i in range(len(labels))]
            if names is not None:
                for i, value in enumerate(raw_labels):
                    if value not in names:
                        raise DataError(f"{sources[i]}: label {value} has no entry in label_names ({names})")
                raw_labels = [names[v] for v in raw_labels]
            out[split] = RawSplit(inputs=list(images), labels=raw_labels, sources=sources)
    return out


# -- tabular -------------------------------------------------------------------------------


def _tabular_rows(file: Path, delimiter: str, columns: list[str] | None) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    if delimiter == "whitespace":
        rows: Iterator[tuple[int, list[str]]] = (
            (n, line.split()) for n, line in enumerate(_text_lines(file), start=1) if line.strip()
        )
    else:
        rows = _csv_rows(file, delimiter)
    if columns is not None:
        if isinstance(columns, str) or not all(isinstance(c, str) and c for c in columns):
            raise DataError(f"{file}: option 'columns' must be a list of column names, got {columns!r}")
        return list(columns), rows
    try:
        _, header = next(rows)
    except StopIteration:
        raise DataError(f"{file}: empty file (expected a header row, or pass the 'columns' option)") from None
    return [h.strip() for h in header], rows


def load_tabular_csv(path: Path, *, options: dict[str, Any]) -> dict[str, RawSplit]:
    """Delimited table with a target column and declared numeric/categorical feature columns.

    Options: ``target`` (required), ``numeric`` and ``categorical`` (lists of column names),
    ``na_values`` (["", "NA", "?"]), ``delimiter`` ("," or tab for .tsv; "whitespace" for runs of blanks), ``columns`` (names for a
    header-less file), ``files`` ({split: file}), ``label_names`` ({raw target value: label name}).
    Inputs: {column: array}; numeric float64 with NaN for missing, categorical object arrays of str/None.
    """
    _check_options("tabular_csv", options, {"target", "numeric", "categorical", "na_values", "delimiter",
                                            "columns", "files", "label_names"})
    target = options.get("target")
    if not target:
        raise DataError("tabular_csv: option 'target' (the label column) is required")
    numeric = list(options.get("numeric") or [])
    categorical = list(options.get("categorical") or [])
    na_values = set(options.get("na_values", ["", "NA", "?"]))
    delimiter = options.get("delimiter")
    columns = options.get("columns")
    label_names = options.get("label_names")
    if label_names is not None:
        label_names = {str(k): str(v) for k, v in dict(label_names).items()}
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise DataError(f"tabular_csv: column {both[0]!r} is declared both numeric and categorical")
    if target in numeric or target in categorical:
        raise DataError(f"tabular_csv: the target column {target!r} is also declared as a feature")

    files = _split_files("tabular_csv", Path(path), options, (".csv", ".tsv", ".data", ".txt"))
    out = {}
    for split, file in files.items():
        header, rows = _tabular_rows(file, delimiter or ("\t" if file.suffix.lower() == ".tsv" else ","), columns)
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            raise DataError(f"{file}: duplicate column names {dupes}")
        if target not in header:
            raise DataError(f"{file}: no target column {target!r} (columns: {', '.join(header)})")
        if not numeric and not categorical:
            raise DataError(f"{file}: declare feature columns with the 'numeric' and/or 'categorical' options (columns: {', '.join(header)})")
        for kind, names in (("numeric", numeric), ("categorical", categorical)):
            for name in names:
                if name not in header:
                    raise DataError(f"{file}: declared {kind} column {name!r} is absent (columns: {', '.join(header)})")
        index = {name: i for i, name in enumerate(header)}
        num_values: dict[str, list[float]] = {c: [] for c in numeric}
        cat_values: dict[str, list[str | None]] = {c: [] for c in categorical}
        labels: list[str] = []
        sources: list[str] = []
        for line, row in rows:
            if len(row) != len(header):
                raise DataError(f"{file}:{line}: expected {len(header)} fields, got {len(row)}")
            raw_target = row[index[target]].strip()
            if raw_target in na_values:
                raise DataError(f"{file}:{line}: missing target in column {target!r}")
            if label_names is not None:
                if raw_target not in label_names:
                    raise DataError(f"{file}:{line}: target value {raw_target!r} has no entry in label_names ({', '.join(label_names)})")
                raw_target = label_names[raw_target]
            for name in numeric:
                value = row[index[name]].strip()
                if value in na_values:
                    num_values[name].append(math.nan)
                    continue
                try:
                    num_values[name].append(float(value))
                except ValueError:
                    raise DataError(f"{file}:{line}: column {name!r}: {value!r} is not a number") from None
            for name in categorical:
                value = row[index[name]].strip()
                cat_values[name].append(None if value in na_values else value)
            labels.append(raw_target)
            sources.append(f"{file}:{line}")
        if not labels:
            raise DataError(f"{file}: no data rows")
        inputs: dict[str, np.ndarray] = {c: np.asarray(v, dtype=np.float64) for c, v in num_values.items()}
        for name, values in cat_values.items():
            array = np.empty(len(values), dtype=object)
            array[:] = values
            inputs[name] = array
        out[split] = RawSplit(inputs=inputs, labels=labels, sources=sources)
    return out
