"""UCI Statlog German Credit: attribute codes decoded from ``german.doc`` and a loader.

``german.data`` holds 1000 whitespace-separated rows of 20 attributes (symbolic codes such as
``A11`` for categorical ones) and a class (1 = good, 2 = bad). :func:`parse_doc` reads the
attribute descriptions and code meanings from ``german.doc``; :func:`load_german_credit` (the
``german_credit`` loader) returns the rows with readable categories, numeric columns as float64,
and label names ``good``/``bad``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "CLASS_NAMES", "SPLIT_FILES", "Attribute", "parse_doc", "load_german_credit"]

# short column names in german.doc's attribute order (1..20); kinds are checked against the doc
COLUMNS: list[tuple[str, str]] = [
    ("checking_account", "categorical"),
    ("duration_months", "numeric"),
    ("credit_history", "categorical"),
    ("purpose", "categorical"),
    ("credit_amount", "numeric"),
    ("savings", "categorical"),
    ("employment_since", "categorical"),
    ("installment_rate", "numeric"),
    ("personal_status_sex", "categorical"),
    ("other_debtors", "categorical"),
    ("residence_since", "numeric"),
    ("property", "categorical"),
    ("age_years", "numeric"),
    ("other_installment_plans", "categorical"),
    ("housing", "categorical"),
    ("existing_credits", "numeric"),
    ("job", "categorical"),
    ("people_liable", "numeric"),
    ("telephone", "categorical"),
    ("foreign_worker", "categorical"),
]
CLASS_NAMES = {"1": "good", "2": "bad"}

_ATTRIBUTE = re.compile(r"^\s*Att\w*ibute\s+(\d+)\s*:\s*\((qualitative|numerical)\)\s*$", re.IGNORECASE)
_CODE = re.compile(r"^\s*(A\d+)\s*:\s*(.*?)\s*$")
_SECTION = re.compile(r"^\s*\d+\.\s+\S")


@dataclass
class Attribute:
    """One attribute of german.doc: its number, kind, title and code meanings."""

    number: int
    kind: str  # "categorical" | "numeric"
    title: str = ""
    codes: dict[str, str] = field(default_factory=dict)


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s*/\s*$", "", text)  # a trailing "/" only marks a continued line


def parse_doc(path: str | Path) -> list[Attribute]:
    """The 20 attributes described in ``german.doc`` (codes mapped to whitespace-normalised text)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the German Credit description ({exc.strerror})") from None
    attributes: list[Attribute] = []
    current: Attribute | None = None
    last_code: str | None = None
    for number, line in enumerate(lines, 1):
        head = _ATTRIBUTE.match(line)
        if head:
            kind = "categorical" if head.group(2).lower() == "qualitative" else "numeric"
            current = Attribute(number=int(head.group(1)), kind=kind)
            attributes.append(current)
            last_code = None
            continue
        if current is None:
            continue
        if _SECTION.match(line):  # "8.  Cost Matrix": the attribute list is over
            break
        if not line.strip():
            continue
        code = _CODE.match(line)
        if code:
            last_code = code.group(1)
            if last_code in current.codes:
                raise ValueError(f"{path}:{number}: code {last_code} is described twice")
            current.codes[last_code] = code.group(2)
        elif last_code is not None:
            current.codes[last_code] += " " + line.strip()
        else:
            current.title = _clean(f"{current.title} {line}")
    for attribute in attributes:
        attribute.codes = {k: _clean(v) for k, v in attribute.codes.items()}
    numbers = [a.number for a in attributes]
    if numbers != list(range(1, len(COLUMNS) + 1)):
        raise ValueError(f"{path}: expected attributes 1..{len(COLUMNS)} in order, found {numbers}")
    for attribute, (name, kind) in zip(attributes, COLUMNS):
        if attribute.kind != kind:
            raise ValueError(f"{path}: attribute {attribute.number} ({name}) is {attribute.kind}, expected {kind}")
        if kind == "categorical" and not attribute.codes:
            raise ValueError(f"{path}: attribute {attribute.number} ({name}) lists no codes")
    return attributes


SPLIT_FILES = {"train": "train.data", "validation": "validation.data", "test": "test.data"}


def load_german_credit(path: str | Path, *, options: dict[str, Any]) -> dict:
    """The ``german_credit`` loader: German Credit rows as :class:`RawSplit` objects.

    ``path`` is the dataset folder with ``german.data`` (one ``train`` split; the engine carves test
    and validation), or ``german.data`` itself, or a folder of pre-split files in the same format
    (``train.data`` and optionally ``validation.data``/``test.data``, as :func:`cross_validate`
    writes per fold), each with ``german.doc`` beside it. Options: ``data`` (default
    ``german.data``), ``doc`` (default ``german.doc``) and ``decode`` (default true: codes become
    german.doc's readable text; false keeps ``A11``…).
    """
    from bigmodel.core.data import DataError

    known = {"data", "doc", "decode"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise DataError(f"german_credit loader: unknown option {unknown[0]!r} (known: {sorted(known)})")
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    doc_path = folder / options.get("doc", "german.doc")
    decode = bool(options.get("decode", True))
    if path.is_file():
        files = {"train": path}
    elif "data" not in options and (folder / SPLIT_FILES["train"]).is_file():
        files = {k: folder / name for k, name in SPLIT_FILES.items() if (folder / name).is_file()}
    else:
        files = {"train": folder / options.get("data", "german.data")}
    if not files["train"].is_file():
        raise DataError(f"{files['train']}: German Credit data file not found")
    meanings: list[dict[str, str]] = [{} for _ in COLUMNS]
    if decode:
        if not doc_path.is_file():
            raise DataError(f"{doc_path}: german.doc is needed to decode attribute codes (or set decode: false)")
        meanings = [a.codes for a in parse_doc(doc_path)]
    return {split: _read_rows(file, meanings, decode, doc_path.name) for split, file in files.items()}


def _read_rows(data_path: Path, meanings: list[dict[str, str]], decode: bool, doc_name: str) -> Any:
    from bigmodel.core.data import DataError, RawSplit

    columns: list[list[Any]] = [[] for _ in COLUMNS]
    labels: list[str] = []
    sources: list[str] = []
    lines = data_path.read_text(encoding="latin-1").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{data_path.name}:{number}"
        fields = line.split()
        if len(fields) != len(COLUMNS) + 1:
            raise DataError(f"{where}: expected {len(COLUMNS) + 1} whitespace-separated fields, found {len(fields)}")
        for i, ((name, kind), value) in enumerate(zip(COLUMNS, fields)):
            if kind == "numeric":
                try:
                    columns[i].append(float(value))
                except ValueError:
                    raise DataError(f"{where}: column {name!r}: {value!r} is not a number") from None
            elif decode:
                if value not in meanings[i]:
                    raise DataError(f"{where}: column {name!r}: code {value!r} is not described in {doc_name}")
                columns[i].append(meanings[i][value])
            else:
                columns[i].append(value)
        if fields[-1] not in CLASS_NAMES:
            raise DataError(f"{where}: class {fields[-1]!r} is neither 1 (good) nor 2 (bad)")
        labels.append(CLASS_NAMES[fields[-1]])
        sources.append(where)
    if not labels:
        raise DataError(f"{data_path}: no rows")
    inputs = {
        name: np.asarray(values, dtype=np.float64) if kind == "numeric" else np.asarray(values, dtype=object)
        for (name, kind), values in zip(COLUMNS, columns)
    }
    return RawSplit(inputs=inputs, labels=labels, sources=sources)
