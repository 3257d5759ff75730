"""Datasets: fetching with checksums (pooch, mirror, cache), label encoding and splits.

The data contract (docs/architecture.md): loaders return :class:`RawSplit` objects with label
*names* (or ints for npz); :func:`encode` turns them into a :class:`Split` with int64 ids into a
:class:`~bigmodel.core.specs.LabelMap`. :func:`load_splits` does the whole path: fetch or read
a local path, encode, carve a validation split when the source has none.

Environment: ``BIGMODEL_CACHE_DIR`` (cache root, default the platform's user cache directory)
and ``BIGMODEL_DATA_MIRROR`` (a directory or an http(s) URL consulted before official URLs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .specs import DataFile, DatasetSpec, LabelMap, LoaderSpec, resolve_callable

__all__ = [
    "SPLITS",
    "DataError",
    "RawSplit",
    "Split",
    "Splits",
    "cache_dir",
    "dataset_dir",
    "is_cached",
    "fetch",
    "encode",
    "carve_validation",
    "subset",
    "join_splits",
    "guess_loader",
    "load_splits",
]

SPLITS = ("train", "validation", "test")
CACHE_ENV = "BIGMODEL_CACHE_DIR"
MIRROR_ENV = "BIGMODEL_DATA_MIRROR"


class DataError(ValueError):
    """Bad or unavailable data; the message names the file and the line, index or field."""


@dataclass
class RawSplit:
    """What a loader returns: inputs, label names (or ints) and where each example came from."""

    inputs: Any
    labels: list
    sources: list[str]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Split:
    """Encoded examples: inputs, int64 label ids into the label map, ``file:line`` sources."""

    inputs: Any
    labels: np.ndarray
    sources: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: Sequence[int] | np.ndarray) -> "Split":
        """The examples at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        if isinstance(self.inputs, dict):
            inputs: Any = {k: np.asarray(v)[idx] for k, v in self.inputs.items()}
        else:
            inputs = [self.inputs[i] for i in idx]
        return Split(inputs=inputs, labels=self.labels[idx], sources=[self.sources[i] for i in idx])


Splits = dict[str, Split]


# -- cache and fetching --------------------------------------------------------------------


def cache_dir() -> Path:
    """``$BIGMODEL_CACHE_DIR``, else the platform's user cache directory for bigmodel."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("bigmodel"))


def dataset_dir(spec: DatasetSpec) -> Path:
    """Where ``spec``'s files are cached: ``<cache>/datasets/<sector>/<dataset>/``."""
    return cache_dir() / "datasets" / spec.sector / spec.name


def is_cached(spec: DatasetSpec) -> bool:
    """Whether every file of ``spec`` is present in the cache (``fetch`` verifies hashes)."""
    folder = dataset_dir(spec)
    return all((folder / f.filename).is_file() for f in spec.files)


def _hash_of(path: Path, algo: str) -> str:
    import pooch

    return pooch.file_hash(str(path), alg=algo)


def _verify(path: Path, datafile: DataFile, source: str, *, fate: str = "the downloaded file was deleted") -> None:
    """Raise DataError, deleting ``path`` first, when its hash is not the declared one."""
    algo, _, expected = datafile.hash.partition(":")
    actual = _hash_of(path, algo)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise DataError(
            f"{source}: {algo} checksum mismatch for {datafile.filename}: "
            f"expected {expected}, got {actual} ({fate})"
        )


def _temp_path(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    os.close(fd)
    return Path(tmp)


def _download(url: str, dest: Path, *, progress: bool) -> None:
    """Download ``url`` to ``dest`` with pooch, or copy a ``file://`` URL (no hash: the caller verifies)."""
    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse

        source = Path(unquote(urlparse(url).path))
        if not source.is_file():
            raise DataError(f"{url}: no such file")
        shutil.copyfile(source, dest)
        return
    import pooch

    pooch.HTTPDownloader(progressbar=progress)(url, str(dest), None)


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _from_mirror(mirror: str, spec: DatasetSpec, datafile: DataFile, dest: Path, *, progress: bool) -> bool:
    """Put the mirror's copy of ``datafile`` at ``dest`` (verified); False if the mirror lacks it."""
    subdir = spec.mirror_subdir or spec.name
    if _is_url(mirror):
        import requests

        url = f"{mirror.rstrip('/')}/{subdir}/{datafile.filename}"
        tmp = _temp_path(dest.parent, dest.name)
        try:
            _download(url, tmp, progress=progress)
        except requests.HTTPError as exc:
            tmp.unlink(missing_ok=True)
            if exc.response is not None and exc.response.status_code == 404:
                return False
            raise DataError(f"mirror {url}: download failed ({exc})") from None
        except requests.RequestException as exc:
            tmp.unlink(missing_ok=True)
            raise DataError(f"mirror {url}: download failed ({type(exc).__name__}: {exc})") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _verify(tmp, datafile, url)
        os.replace(tmp, dest)
        return True

    root = Path(mirror.removeprefix("file://")).expanduser()
    if not root.is_dir():
        raise DataError(f"mirror {mirror}: not a directory or an http(s) URL (set by --mirror or ${MIRROR_ENV})")
    source = root / subdir / datafile.filename
    if not source.is_file():
        return False
    tmp = _temp_path(dest.parent, dest.name)
    try:
        shutil.copyfile(source, tmp)
        # the copy is checked and deleted when bad; the mirror itself is read-only to us
        _verify(tmp, datafile, str(source), fate="the copy was deleted, the mirror was left untouched")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _from_url(datafile: DataFile, dest: Path, *, progress: bool, note: str = "") -> None:
    """Download ``datafile`` from its official URL to ``dest``, verified, atomically."""
    import requests

    tmp = _temp_path(dest.parent, dest.name)
    try:
        _download(datafile.url, tmp, progress=progress)
    except requests.RequestException as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"{datafile.url}: download of {datafile.filename} failed ({type(exc).__name__}: {exc}){note}"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _verify(tmp, datafile, datafile.url)
    os.replace(tmp, dest)


def _from_archives(members: list[DataFile], folder: Path, *, progress: bool) -> None:
    """Download each archive once, extract the members, verify each member's hash."""
    import pooch
    import requests

    by_url: dict[str, list[DataFile]] = {}
    for datafile in members:
        by_url.setdefault(datafile.url, []).append(datafile)
    for url, datafiles in by_url.items():
        archive_name = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "archive"
        lower = archive_name.lower()
        if lower.endswith(".zip"):
            extractor: Any = pooch.Unzip
        elif lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
            extractor = pooch.Untar
        else:
            raise DataError(f"{url}: cannot tell the archive format of {archive_name!r} (expected .zip or .tar[.gz|.bz2|.xz])")
        with tempfile.TemporaryDirectory(prefix=".archive-", dir=folder) as work:
            archive = Path(work) / archive_name
            try:
                _download(url, archive, progress=progress)
            except requests.RequestException as exc:
                raise DataError(f"{url}: download failed ({type(exc).__name__}: {exc})") from None
            extract_dir = Path(work) / "extracted"
            wanted = [d.member for d in datafiles if d.member]
            try:
                extractor(members=wanted, extract_dir=str(extract_dir))(str(archive), "download", None)
            except (OSError, EOFError, ValueError) as exc:
                raise DataError(f"{url}: cannot extract {wanted} ({type(exc).__name__}: {exc})") from None
            for datafile in datafiles:
                member = extract_dir / str(datafile.member)
                if not member.is_file():
                    raise DataError(f"{url}: archive has no member {datafile.member!r} (for {datafile.filename})")
                _verify(member, datafile, f"{url}!{datafile.member}")
                os.replace(member, folder / datafile.filename)


def fetch(spec: DatasetSpec, *, mirror: str | None = None, progress: bool = True) -> Path:
    """Make every file of ``spec`` present and verified in the cache; return their directory.

    Files already cached with the right hash are kept. Otherwise the mirror (``mirror`` or
    ``$BIGMODEL_DATA_MIRROR``: a directory or an http(s) URL, read at
    ``<mirror>/<mirror_subdir or name>/<filename>``) is consulted first, then the official URL.
    For archive members the archive is downloaded and the member's hash verified; a mirror
    holds the extracted member itself. A checksum mismatch deletes the bad download and raises
    :class:`DataError` with both hashes and the source.
    """
    import pooch

    folder = dataset_dir(spec)
    folder.mkdir(parents=True, exist_ok=True)
    mirror = mirror if mirror is not None else (os.environ.get(MIRROR_ENV, "").strip() or None)
    logger = pooch.get_logger()
    level = logger.level
    if not progress:
        logger.setLevel("WARNING")
    try:
        pending_members: list[DataFile] = []
        for datafile in spec.files:
            dest = folder / datafile.filename
            if dest.is_file():
                algo, _, expected = datafile.hash.partition(":")
                if _hash_of(dest, algo) == expected:
                    continue
                dest.unlink()  # a stale or corrupted copy: fetch again
            if mirror and _from_mirror(mirror, spec, datafile, dest, progress=progress):
                continue
            if datafile.member:
                pending_members.append(datafile)
            else:
                note = f"; the mirror {mirror} has no {spec.mirror_subdir or spec.name}/{datafile.filename}" if mirror else ""
                _from_url(datafile, dest, progress=progress, note=note)
        if pending_members:
            _from_archives(pending_members, folder, progress=progress)
    finally:
        logger.setLevel(level)
    return folder


# -- labels and splits ---------------------------------------------------------------------


def _preview(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def encode(raw: RawSplit, label_map: LabelMap, *, extend: bool = False) -> tuple[Split, LabelMap]:
    """Turn label names (or int ids) into int64 ids; unknown names fail unless ``extend``.

    With ``extend`` new names are appended to the label map in order of first appearance and the
    new map is returned. Int labels (npz) must already be ids in ``range(len(label_map))``.
    """
    if len(raw.labels) != len(raw.sources):
        raise DataError(f"{raw.sources[0] if raw.sources else '<empty>'}: {len(raw.labels)} labels but {len(raw.sources)} sources")
    label2id = dict(label_map.label2id)
    names = list(label_map.names)
    ids = np.empty(len(raw.labels), dtype=np.int64)
    unknown: dict[str, str] = {}
    for i, (label, source) in enumerate(zip(raw.labels, raw.sources)):
        if isinstance(label, (bool, np.bool_)):
            raise DataError(f"{source}: label {label!r} is a boolean; use names or int ids")
        if isinstance(label, (int, np.integer)):
            if not 0 <= int(label) < len(names):
                raise DataError(
                    f"{source}: label id {int(label)} is out of range for {len(names)} classes ({_preview(names)})"
                )
            ids[i] = int(label)
            continue
        if not isinstance(label, str):
            raise DataError(f"{source}: label {label!r} is neither a name nor an int id")
        if label not in label2id:
            if not extend:
                unknown.setdefault(label, source)
                continue
            label2id[label] = len(names)
            names.append(label)
        ids[i] = label2id[label]
    if unknown:
        (first, source), *rest = unknown.items()
        more = f" and {len(rest)} more unknown label(s): {_preview([n for n, _ in rest], 5)}" if rest else ""
        raise DataError(
            f"{source}: unknown label {first!r} (known: {_preview(label_map.names)}){more}; "
            "pass --extend-labels to add it"
        )
    if len(names) != len(label_map):
        label_map = LabelMap(id2label=dict(enumerate(names)), positive=label_map.positive)
    return Split(inputs=raw.inputs, labels=ids, sources=list(raw.sources)), label_map


def carve_validation(train: Split, fraction: float, seed: int, *, name: str = "validation") -> tuple[Split, Split]:
    """Split ``train`` into (train, validation), stratified by label, deterministic for ``seed``."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise DataError(f"{name}_fraction: {fraction} is not between 0 and 1")
    where = train.sources[0] if train.sources else "<empty train split>"
    indices = np.arange(len(train))
    try:
        keep, held = train_test_split(indices, test_size=fraction, random_state=seed, shuffle=True, stratify=train.labels)
    except ValueError as exc:
        raise DataError(
            f"{where}: cannot carve a stratified {name} split ({fraction:g} of {len(train)} examples): {exc}; "
            f"provide a {name} split or more examples per class"
        ) from None
    return train.take(np.sort(keep)), train.take(np.sort(held))


def join_splits(parts: Sequence[Split]) -> Split:
    """One split holding the examples of ``parts`` in order (list inputs, or dict-of-columns with
    the same columns)."""
    parts = list(parts)
    if not parts:
        raise DataError("join_splits: no splits to join")
    if isinstance(parts[0].inputs, dict):
        columns = list(parts[0].inputs)
        for part in parts[1:]:
            if not isinstance(part.inputs, dict) or list(part.inputs) != columns:
                raise DataError(f"join_splits: the splits have different columns ({columns} vs "
                                f"{list(part.inputs) if isinstance(part.inputs, dict) else type(part.inputs).__name__})")
        inputs: Any = {c: np.concatenate([np.asarray(part.inputs[c]) for part in parts]) for c in columns}
    else:
        inputs = [x for part in parts for x in part.inputs]
    return Split(inputs=inputs, labels=np.concatenate([np.asarray(part.labels, dtype=np.int64) for part in parts]),
                 sources=[s for part in parts for s in part.sources])


def subset(split: Split, n: int, seed: int) -> Split:
    """A stratified subset of ``n`` examples (all of them when ``n`` is 0 or at least ``len(split)``).

    Each class gets ``n`` times its share, rounded by largest remainder (ties broken by ``seed``),
    so a subset smaller than the number of classes is still possible. Order is preserved.
    """
    if n < 0:
        raise DataError(f"subset size must be >= 0, got {n}")
    if n == 0 or n >= len(split):
        return split
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(split.labels, return_counts=True)
    quota = counts * n / len(split)
    take = np.floor(quota).astype(np.int64)
    remainder = quota - take
    order = np.lexsort((rng.random(len(classes)), -remainder))
    take[order[: n - int(take.sum())]] += 1
    chosen: list[np.ndarray] = []
    for cls, k in zip(classes, take):
        members = np.flatnonzero(split.labels == cls)
        chosen.append(rng.permutation(members)[:k])
    return split.take(np.sort(np.concatenate(chosen)))


# -- loading -------------------------------------------------------------------------------


def _loaders() -> dict[str, LoaderSpec]:
    from . import get_registry

    return get_registry().all("loader")


def _loader_list(loaders: dict[str, LoaderSpec]) -> str:
    def shape(spec: LoaderSpec) -> str:
        suffixes = ["<directory>" if s == "" else s for s in spec.suffixes]
        return f"{spec.name} ({spec.task}: {', '.join(suffixes) or 'any'})"

    return "; ".join(shape(s) for s in loaders.values())


def guess_loader(path: Path, *, task: str | None = None) -> str:
    """The registered loader for ``path`` by suffix (files) or contents (directories)."""
    loaders = _loaders()
    if task is not None:
        loaders = {k: v for k, v in loaders.items() if v.task == task}
    if path.is_file():
        suffixes = {path.suffix.lower()}
    else:
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
        suffixes = {p.suffix.lower() for p in entries if p.is_file()}
        suffixes.discard("")
        if not any(s in spec.suffixes for spec in loaders.values() for s in suffixes) and any(p.is_dir() for p in entries):
            suffixes = {""}  # a directory of sub-directories: folder-shaped readers
    candidates = sorted(name for name, spec in loaders.items() if suffixes & set(spec.suffixes))
    what = f" for {task} data" if task else ""
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise DataError(
            f"{path}: no loader{what} reads this (suffixes {sorted(suffixes)}); "
            f"pass --loader NAME; loaders: {_loader_list(loaders) or 'none registered'}"
        )
    raise DataError(f"{path}: several loaders{what} could read this ({', '.join(candidates)}); pass --loader NAME")


def load_splits(
    source: DatasetSpec | str | os.PathLike,
    *,
    label_map: LabelMap,
    loader: str | None = None,
    options: dict[str, Any] | None = None,
    task: str | None = None,
    extend_labels: bool = False,
    seed: int = 0,
    validation_fraction: float = 0.1,
    mirror: str | None = None,
    progress: bool = True,
) -> tuple[Splits, LabelMap]:
    """Read a registered dataset (fetched first) or a local path into encoded splits.

    ``loader`` names the reader for a local path (guessed from suffix or directory shape when
    omitted; ``task`` narrows the guess). ``options`` go to the loader (over a dataset's own
    ``loader_options``); the option ``test_fraction`` is handled here: a source without a test
    split gets one carved (stratified) from train. A source without a validation split gets one
    carved from train with ``validation_fraction``. Labels are encoded against ``label_map``
    (train, then validation, then test); the returned map is extended only if ``extend_labels``.
    """
    options = dict(options or {})
    if isinstance(source, DatasetSpec):
        path = fetch(source, mirror=mirror, progress=progress)
        name = loader or source.loader
        options = {**source.loader_options, **options}
        task = task or source.task
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"{path}: data path does not exist")
        name = loader or guess_loader(path, task=task)
    registry_loaders = _loaders()
    if name not in registry_loaders:
        raise DataError(f"unknown loader {name!r}; loaders: {_loader_list(registry_loaders) or 'none registered'}")
    spec = registry_loaders[name]
    if task is not None and spec.task != task:
        raise DataError(f"loader {name!r} reads {spec.task} data, but this task is {task}")
    test_fraction = options.pop("test_fraction", None)

    raw = resolve_callable(spec.load)(path, options=options)
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{path}: loader {name!r} returned no splits")
    unknown = sorted(set(raw) - set(SPLITS))
    if unknown:
        raise DataError(f"{path}: loader {name!r} returned unknown split(s) {unknown}; expected {list(SPLITS)}")

    splits: Splits = {}
    for key in SPLITS:
        if key in raw:
            if not isinstance(raw[key], RawSplit):
                raise DataError(f"{path}: loader {name!r} returned {type(raw[key]).__name__} for {key}; expected RawSplit")
            if len(raw[key]) == 0:
                raise DataError(f"{path}: the {key} split is empty")
            splits[key], label_map = encode(raw[key], label_map, extend=extend_labels)

    if test_fraction is not None and "test" not in splits and "train" in splits:
        splits["train"], splits["test"] = carve_validation(splits["train"], float(test_fraction), seed, name="test")
    if "validation" not in splits and "train" in splits:
        splits["train"], splits["validation"] = carve_validation(splits["train"], validation_fraction, seed)
    return {k: splits[k] for k in SPLITS if k in splits}, label_map
