"""The value model ``V = f(T)·g(K)·h(U)·m(R)`` (``bigmodel value``; see docs/value-model.md).

Each factor F in T (technology barrier), K (industry-knowledge depth), U (user trust) and
R (resources) is a weighted mean of items with values in [0, 1]:

    S_F = Σ w̃ᵢ·vᵢ      with w̃ᵢ = wᵢ / Σ wⱼ   (weights normalised within the factor)

and V is the product of the shaped factor scores, each shaping function mapping [0, 1] onto
[0, 1]. Items are *measured* (a sector plugin's ``register_value_factors`` hook, computed from
a run directory) or *declared* (a user's TOML/YAML file). A declared item never overrides a
measured one of the same name; a factor with no usable item makes V not computable.

The module reads top to bottom: shaping functions, aggregation (pure), files, measured items,
one run's report, the chart. Nothing heavy is imported at module level (matplotlib only in
:func:`write_chart`).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pydantic import ValidationError

from ._registry import Registry, RegistryError, normalise_sector_name
from .specs import ValueFactor, ValueFactorSpec, resolve_callable

__all__ = [
    "FACTORS",
    "FACTOR_TITLES",
    "SHAPING_LETTERS",
    "SHAPING_FUNCTIONS",
    "DEFAULT_SHAPING",
    "SENSITIVITY_STEP",
    "Shaping",
    "normalise_weights",
    "factor_score",
    "combine",
    "sensitivity",
    "merge_items",
    "FactorResult",
    "score_factors",
    "WeightsConfig",
    "load_weights",
    "load_declared",
    "read_run",
    "measured_items",
    "RunValue",
    "value_of_run",
    "report_dict",
    "run_labels",
    "write_chart",
]

FACTORS: tuple[str, ...] = ("T", "K", "U", "R")
FACTOR_TITLES = {
    "T": "technology barrier",
    "K": "industry-knowledge depth",
    "U": "user trust",
    "R": "resources",
}
SHAPING_LETTERS = {"T": "f", "K": "g", "U": "h", "R": "m"}
SENSITIVITY_STEP = 0.1
FORMULA = "V = f(T)·g(K)·h(U)·m(R)"


# -- shaping functions: [0, 1] -> [0, 1], increasing, 0 -> 0 and 1 -> 1 ------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _logistic(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _linear(x: float) -> float:
    return x


def _log1p(x: float, k: float) -> float:
    return math.log1p(k * x) / math.log1p(k)


def _sigmoid(x: float, centre: float, slope: float) -> float:
    low, high = _logistic(-slope * centre), _logistic(slope * (1.0 - centre))
    return (_logistic(slope * (x - centre)) - low) / (high - low)


def _power(x: float, exponent: float) -> float:
    return x**exponent


# name -> (function, {parameter: (default, check, description of the allowed range)})
SHAPING_FUNCTIONS: dict[str, tuple[Any, dict[str, tuple[float, Any, str]]]] = {
    "linear": (_linear, {}),
    "log1p": (_log1p, {"k": (9.0, lambda v: 0 < v <= 1e6, "in (0, 1e6]")}),
    "sigmoid": (
        _sigmoid,
        {
            "centre": (0.5, lambda v: 0 <= v <= 1, "in [0, 1]"),
            "slope": (10.0, lambda v: 0 < v <= 100, "in (0, 100]"),
        },
    ),
    "power": (_power, {"exponent": (2.0, lambda v: 0 < v <= 100, "in (0, 100]")}),
}


@dataclass(frozen=True)
class Shaping:
    """A shaping function with its parameters (defaults filled in); call it on a score in [0, 1]."""

    function: str = "linear"
    params: tuple[tuple[str, float], ...] = ()

    def __call__(self, x: float) -> float:
        fn, _ = SHAPING_FUNCTIONS[self.function]
        y = fn(min(1.0, max(0.0, x)), **dict(self.params))
        return min(1.0, max(0.0, y))

    def describe(self) -> str:
        if not self.params:
            return self.function
        return f"{self.function}(" + ", ".join(f"{k}={v:g}" for k, v in self.params) + ")"

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, **dict(self.params)}

    @classmethod
    def make(cls, function: str, **params: float) -> "Shaping":
        """``Shaping.make("sigmoid", centre=0.6)``: validated, defaults filled in."""
        return cls.parse({"function": function, **params}, where="shaping")

    @classmethod
    def parse(cls, data: Any, *, where: str) -> "Shaping":
        """From ``"log1p"`` or ``{"function": "sigmoid", "centre": 0.6, "slope": 8}``; errors start with ``where``."""
        if isinstance(data, str):
            data = {"function": data}
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a function name or a table with 'function' (got {data!r})")
        data = dict(data)
        name = data.pop("function", None)
        if name is None:
            raise ValueError(f"{where}.function: missing (choose from {', '.join(sorted(SHAPING_FUNCTIONS))})")
        if name not in SHAPING_FUNCTIONS:
            raise ValueError(
                f"{where}.function: unknown shaping function {name!r} (choose from {', '.join(sorted(SHAPING_FUNCTIONS))})"
            )
        _, spec = SHAPING_FUNCTIONS[name]
        params: dict[str, float] = {}
        for key, raw in data.items():
            if key not in spec:
                allowed = ", ".join(spec) or "none"
                raise ValueError(f"{where}.{key}: not a parameter of {name} (parameters: {allowed})")
            _, check, allowed_range = spec[key]
            if not _is_number(raw) or not check(float(raw)):
                raise ValueError(f"{where}.{key}: {name} parameter must be a number {allowed_range} (got {raw!r})")
            params[key] = float(raw)
        full = tuple((key, params.get(key, default)) for key, (default, _, _) in spec.items())
        return cls(function=name, params=full)


DEFAULT_SHAPING: dict[str, Shaping] = {
    "T": Shaping.make("linear"),
    "K": Shaping.make("linear"),
    "U": Shaping.make("sigmoid", centre=0.5, slope=10.0),
    "R": Shaping.make("log1p", k=9.0),
}


# -- aggregation (pure) ---------------------------------------------------------------------


def normalise_weights(weights: Sequence[float]) -> list[float]:
    """Weights scaled to sum to 1; raises ValueError on a negative weight or a zero sum."""
    for w in weights:
        if not _is_number(w) or w < 0:
            raise ValueError(f"weights must be finite numbers ≥ 0 (got {w!r})")
    total = math.fsum(weights)
    if total <= 0:
        raise ValueError("weights sum to 0")
    return [w / total for w in weights]


def factor_score(items: Sequence[ValueFactor]) -> float | None:
    """S = Σ w̃ᵢ·vᵢ over the items; None when there are none or their weights sum to 0."""
    if not items or math.fsum(i.weight for i in items) <= 0:
        return None
    shares = normalise_weights([i.weight for i in items])
    return min(1.0, max(0.0, math.fsum(s * i.value for s, i in zip(shares, items))))


def combine(scores: Mapping[str, float | None], shaping: Mapping[str, Shaping]) -> float | None:
    """V = f(T)·g(K)·h(U)·m(R); None (not computable) when any factor score is missing."""
    if any(scores.get(f) is None for f in FACTORS):
        return None
    return math.prod(shaping[f](scores[f]) for f in FACTORS)  # type: ignore[arg-type]


def sensitivity(
    scores: Mapping[str, float | None], shaping: Mapping[str, Shaping], step: float = SENSITIVITY_STEP
) -> dict[str, float | None]:
    """How much V moves when one factor score moves by ``step`` (clipped to [0, 1]), the others fixed."""
    base = combine(scores, shaping)
    if base is None:
        return {f: None for f in FACTORS}
    out: dict[str, float | None] = {}
    for f in FACTORS:
        moved = dict(scores)
        moved[f] = min(1.0, max(0.0, scores[f] + step))  # type: ignore[operator]
        out[f] = combine(moved, shaping) - base  # type: ignore[operator]
    return out


def merge_items(
    measured: Sequence[ValueFactor],
    declared: Sequence[ValueFactor],
    *,
    reserved: Iterable[str] = (),
    measured_only: bool = False,
) -> tuple[list[ValueFactor], list[tuple[ValueFactor, str]]]:
    """The items V is computed from, and the declared items left out with the reason.

    A declared item is left out when a measured item has its name, when its name is ``reserved``
    (a measured item of the run's sector that does not apply to this run), or with ``measured_only``.
    """
    measured_names = {i.name for i in measured}
    reserved = set(reserved)
    used = list(measured)
    ignored: list[tuple[ValueFactor, str]] = []
    for item in declared:
        if item.name in measured_names:
            m = next(i for i in measured if i.name == item.name)
            ignored.append((item, f"shadowed by the measured item {m.factor}.{m.name}"))
        elif item.name in reserved:
            ignored.append((item, "name belongs to a measured item of this sector (not applicable to this run)"))
        elif measured_only:
            ignored.append((item, "--measured-only"))
        else:
            used.append(item)
    return used, ignored


@dataclass
class FactorResult:
    """One factor of one run: its items, their normalised shares, score and shaped score."""

    factor: str
    shaping: Shaping
    items: list[ValueFactor]
    shares: list[float]
    score: float | None
    shaped: float | None
    missing: str | None = None  # why the factor has no score

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": FACTOR_TITLES[self.factor],
            "shaping": self.shaping.to_dict(),
            "score": self.score,
            "shaped": self.shaped,
            "missing": self.missing,
            "items": [{**i.model_dump(), "share": s} for i, s in zip(self.items, self.shares)],
        }


def score_factors(
    items: Sequence[ValueFactor], shaping: Mapping[str, Shaping], *, measured_only: bool = False
) -> dict[str, FactorResult]:
    """Group items by factor and score each; a factor without usable items is marked missing."""
    out: dict[str, FactorResult] = {}
    for f in FACTORS:
        mine = [i for i in items if i.factor == f]
        total = math.fsum(i.weight for i in mine)
        if not mine:
            why = "no measured items" if measured_only else "no measured or declared items"
            out[f] = FactorResult(f, shaping[f], [], [], None, None, why)
        elif total <= 0:
            out[f] = FactorResult(f, shaping[f], mine, [0.0] * len(mine), None, None, "all item weights are 0")
        else:
            score = factor_score(mine)
            assert score is not None  # items exist and their weights sum above 0
            shares = normalise_weights([i.weight for i in mine])
            out[f] = FactorResult(f, shaping[f], mine, shares, score, shaping[f](score))
    return out


# -- files ------------------------------------------------------------------------------


def _read_table(path: str | os.PathLike, what: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    if path.suffix not in {".toml", ".yaml", ".yml"}:
        raise ValueError(f"{what} file {path}: use a .toml, .yaml or .yml file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
            data = {} if data is None else data
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError
        raise ValueError(f"{what} file {path}: cannot parse ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} file {path}: expected a table at the top level")
    return data


def _check_factor(letter: Any, where: str) -> str:
    if letter not in FACTORS:
        raise ValueError(f"{where}: unknown factor {letter!r} (factors are {', '.join(FACTORS)})")
    return letter


@dataclass(frozen=True)
class WeightsConfig:
    """Item weights overriding the defaults (by factor, then item name) and a shaping per factor."""

    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    shaping: dict[str, Shaping] = field(default_factory=lambda: dict(DEFAULT_SHAPING))
    source: str = "defaults"

    def apply(self, items: Sequence[ValueFactor]) -> list[ValueFactor]:
        """Items with their weight replaced where this file sets one (measured and declared alike)."""
        out = []
        for item in items:
            w = self.weights.get(item.factor, {}).get(item.name)
            out.append(item if w is None else item.model_copy(update={"weight": w}))
        return out

    def check_names(self, items: Sequence[ValueFactor], reserved: Mapping[str, str]) -> list[str]:
        """Notes for weights naming no item of a run; ValueError for an item put under the wrong factor."""
        factor_of = {**reserved, **{i.name: i.factor for i in items}}
        notes = []
        for letter, table in self.weights.items():
            for name in table:
                if name in factor_of and factor_of[name] != letter:
                    raise ValueError(
                        f"{self.source}: weights.{letter}.{name}: item {name!r} belongs to factor {factor_of[name]}"
                    )
                if name not in factor_of:
                    notes.append(f"{self.source}: weights.{letter}.{name} matches no item of this run")
        return notes


def load_weights(path: str | os.PathLike) -> WeightsConfig:
    """Read a weights file: ``[weights.T] item = 2.0`` and ``[shaping.U] function = "sigmoid" ...``."""
    data = _read_table(path, "weights")
    src = str(path)
    unknown = sorted(str(k) for k in data if k not in {"weights", "shaping"})
    if unknown:
        raise ValueError(f"{src}: unknown section {unknown[0]!r} (sections are 'weights' and 'shaping')")
    weights: dict[str, dict[str, float]] = {}
    raw_weights = data.get("weights", {})
    if not isinstance(raw_weights, dict):
        raise ValueError(f"{src}: weights: expected a table of factors (got {raw_weights!r})")
    for letter, table in raw_weights.items():
        _check_factor(letter, f"{src}: weights.{letter}")
        if not isinstance(table, dict):
            raise ValueError(f"{src}: weights.{letter}: expected a table of item = weight (got {table!r})")
        weights[letter] = {}
        for name, w in table.items():
            if not _is_number(w) or w < 0:
                raise ValueError(f"{src}: weights.{letter}.{name}: weight must be a number ≥ 0 (got {w!r})")
            weights[letter][str(name)] = float(w)
    shaping = dict(DEFAULT_SHAPING)
    raw_shaping = data.get("shaping", {})
    if not isinstance(raw_shaping, dict):
        raise ValueError(f"{src}: shaping: expected a table of factors (got {raw_shaping!r})")
    for letter, spec in raw_shaping.items():
        _check_factor(letter, f"{src}: shaping.{letter}")
        shaping[letter] = Shaping.parse(spec, where=f"{src}: shaping.{letter}")
    return WeightsConfig(weights=weights, shaping=shaping, source=src)


def load_declared(path: str | os.PathLike) -> list[ValueFactor]:
    """Read declared items: ``[[item]] factor="R" name="funding" value=0.6 weight=1 evidence="..."``."""
    data = _read_table(path, "factors")
    src = str(path)
    unknown = sorted(str(k) for k in data if k != "item")
    if unknown:
        raise ValueError(f"{src}: unknown key {unknown[0]!r} (declare items as a list under 'item')")
    raw_items = data.get("item", [])
    if not isinstance(raw_items, list):
        raise ValueError(f"{src}: item: expected a list of items (TOML: [[item]] tables)")
    items: list[ValueFactor] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(raw_items, start=1):
        if not isinstance(raw, dict):
            raise ValueError(f"{src}: item {n}: expected a table (got {raw!r})")
        label = f"{src}: item {n}" + (f" ({raw['name']})" if isinstance(raw.get("name"), str) else "")
        if "kind" in raw:
            raise ValueError(f"{label}: field 'kind': declared items are always 'declared'; remove the field")
        if "factor" in raw:
            _check_factor(raw["factor"], f"{label}: field 'factor'")
        for key in ("value", "weight"):
            if isinstance(raw.get(key), bool):
                raise ValueError(f"{label}: field {key!r}: expected a number (got {raw[key]!r})")
        if "weight" in raw and _is_number(raw["weight"]) and raw["weight"] < 0:
            raise ValueError(f"{label}: field 'weight': weight must be ≥ 0 (got {raw['weight']!r})")
        if "value" in raw and _is_number(raw["value"]) and not 0 <= raw["value"] <= 1:
            raise ValueError(f"{label}: field 'value': value must be in [0, 1] (got {raw['value']!r})")
        try:
            item = ValueFactor(**{"weight": 1.0, **raw, "kind": "declared"})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "item"
            got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
            raise ValueError(f"{label}: field {where!r}: {err['msg']}{got}") from None
        if item.name in seen:
            raise ValueError(f"{label}: field 'name': {item.name!r} is already declared by item {seen[item.name]}")
        seen[item.name] = n
        items.append(item)
    return items


# -- measured items ----------------------------------------------------------------------


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``run.json`` of a run directory; errors name the file."""
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a finished run directory (no run.json)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict) or not isinstance(info.get("sector"), str) or not info["sector"].strip():
        raise ValueError(f"{path}: field 'sector' is missing or not a string")
    return info


def measured_items(
    run_dir: str | os.PathLike, registry: Registry
) -> tuple[list[ValueFactor], list[ValueFactorSpec]]:
    """Measure every item the run's sector registered: (measured items, items not applicable).

    Raises ValueError listing every item whose measure failed (import, exception, bad result),
    each with the sector, item and run; and RegistryError when the run's sector is not installed.
    """
    run_dir = Path(run_dir)
    sector = normalise_sector_name(read_run(run_dir)["sector"])
    try:
        registry.sector(sector)
    except RegistryError as exc:
        raise RegistryError(f"{run_dir / 'run.json'}: {exc.args[0] if exc.args else exc}") from None
    measured: list[ValueFactor] = []
    not_applicable: list[ValueFactorSpec] = []
    errors: list[str] = []
    for spec in registry.value_factors(sector):
        where = f"sector {sector!r} item {spec.factor}.{spec.name}"
        ref = spec.measure if isinstance(spec.measure, str) else getattr(spec.measure, "__qualname__", repr(spec.measure))
        try:
            fn = resolve_callable(spec.measure)
        except Exception as exc:
            errors.append(f"{where}: cannot resolve measure {ref!r} ({type(exc).__name__}: {exc})")
            continue
        try:
            result = fn(run_dir)
        except Exception as exc:
            errors.append(f"{where}: measure {ref} raised {type(exc).__name__}: {exc}")
            continue
        if result is None:
            not_applicable.append(spec)
            continue
        if not isinstance(result, tuple) or len(result) != 2:
            errors.append(f"{where}: measure {ref} returned {result!r}; expected (value in [0, 1], evidence) or None")
            continue
        value, evidence = result
        if not _is_number(value) or not 0 <= value <= 1:
            errors.append(f"{where}: measure {ref} returned value {value!r}; expected a number in [0, 1]")
            continue
        if not isinstance(evidence, str) or not evidence.strip():
            errors.append(f"{where}: measure {ref} returned evidence {evidence!r}; expected a non-empty string")
            continue
        measured.append(
            ValueFactor(factor=spec.factor, name=spec.name, weight=spec.weight, value=float(value), evidence=evidence, kind="measured")
        )
    if errors:
        raise ValueError(f"run {run_dir}: {len(errors)} value-factor measure(s) failed: " + "; ".join(errors))
    return measured, not_applicable


# -- one run's report --------------------------------------------------------------------


@dataclass
class RunValue:
    """The value report of one run."""

    run: str
    sector: str
    task: str | None
    factors: dict[str, FactorResult]
    ignored: list[tuple[ValueFactor, str]]
    not_applicable: list[ValueFactorSpec]
    value: float | None
    sensitivity: dict[str, float | None]
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [f for f in FACTORS if self.factors[f].score is None]

    @property
    def label(self) -> str:
        return Path(self.run).name or self.run

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "sector": self.sector,
            "task": self.task,
            "V": self.value,
            "computable": self.value is not None,
            "missing": self.missing,
            "factors": {f: r.to_dict() for f, r in self.factors.items()},
            "sensitivity": self.sensitivity,
            "sensitivity_step": SENSITIVITY_STEP,
            "ignored": [{**i.model_dump(), "reason": why} for i, why in self.ignored],
            "not_applicable": [
                {"factor": s.factor, "name": s.name, "description": s.description} for s in self.not_applicable
            ],
            "notes": self.notes,
        }


def value_of_run(
    run_dir: str | os.PathLike,
    *,
    registry: Registry,
    declared: Sequence[ValueFactor] = (),
    weights: WeightsConfig | None = None,
    measured_only: bool = False,
) -> RunValue:
    """Measure, merge with the declared items, weigh, shape and combine for one run directory."""
    weights = weights or WeightsConfig()
    info = read_run(run_dir)
    measured, not_applicable = measured_items(run_dir, registry)
    reserved = {s.name: s.factor for s in not_applicable}
    used, ignored = merge_items(measured, declared, reserved=reserved, measured_only=measured_only)
    notes = weights.check_names([*measured, *declared], reserved)
    factors = score_factors(weights.apply(used), weights.shaping, measured_only=measured_only)
    scores = {f: r.score for f, r in factors.items()}
    return RunValue(
        run=str(run_dir),
        sector=normalise_sector_name(info["sector"]),
        task=info.get("task"),
        factors=factors,
        ignored=[(weights.apply([i])[0], why) for i, why in ignored],
        not_applicable=not_applicable,
        value=combine(scores, weights.shaping),
        sensitivity=sensitivity(scores, weights.shaping),
        notes=notes,
    )


def report_dict(results: Sequence[RunValue], *, weights: WeightsConfig, measured_only: bool) -> dict[str, Any]:
    """The JSON document ``bigmodel value --json`` prints."""
    return {
        "formula": FORMULA,
        "shaping": {f: weights.shaping[f].to_dict() for f in FACTORS},
        "weights_file": None if weights.source == "defaults" else weights.source,
        "measured_only": measured_only,
        "runs": [r.to_dict() for r in results],
    }


# -- chart -------------------------------------------------------------------------------


def write_chart(results: Sequence[RunValue], path: str | os.PathLike) -> Path:
    """Grouped bars: the four factor scores of each run (dots: shaped scores), V above each group."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"chart file {path}: must end in .png")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = run_labels(results)
    width = 0.8 / len(FACTORS)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(results) + 2.5), 4.6))
    colours = {"T": "#4C72B0", "K": "#55A868", "U": "#C44E52", "R": "#8172B2"}
    for j, f in enumerate(FACTORS):
        xs = [i + (j - 1.5) * width for i in range(len(results))]
        scores = [r.factors[f].score for r in results]
        ax.bar(xs, [s if s is not None else 0.0 for s in scores], width, label=f"{f} ({FACTOR_TITLES[f]})", color=colours[f])
        shaped = [(x, r.factors[f].shaped) for x, r in zip(xs, results) if r.factors[f].shaped is not None]
        if shaped:
            ax.plot([x for x, _ in shaped], [y for _, y in shaped], "k.", markersize=6,
                    label="shaped score f(T), g(K), h(U), m(R)" if j == 0 else None)
        for x, s in zip(xs, scores):
            if s is None:
                ax.text(x, 0.02, "missing", rotation=90, ha="center", va="bottom", fontsize=7)
    for i, r in enumerate(results):
        text = "V not computable" if r.value is None else f"V={r.value:.3f}"
        ax.text(i, 1.04, text, ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(results)), labels)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("factor score")
    ax.set_title(FORMULA)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    fig.tight_layout()
    from .charts import save_png

    return save_png(fig, path, dpi=120)


def run_labels(results: Sequence[RunValue]) -> list[str]:
    """Short names for runs side by side: directory names, or full paths when those clash."""
    labels = [r.label for r in results]
    if len(set(labels)) != len(labels):
        labels = [r.run for r in results]
    return labels
