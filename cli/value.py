"""``bigmodel value``: the value model V = f(T)·g(K)·h(U)·m(R) of one or more run directories."""

from __future__ import annotations

import json
from pathlib import Path

import click


__all__ = ["value"]


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--factors", "factors_file", type=click.Path(path_type=Path),
              help="TOML/YAML file of declared items ([[item]] factor, name, value, weight, evidence).")
@click.option("--weights", "weights_file", type=click.Path(path_type=Path),
              help="TOML/YAML file: [weights.<F>] item weights and [shaping.<F>] shaping functions.")
@click.option("--measured-only", is_flag=True, help="Compute V from measured items alone (declared items shown, not used).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--chart", type=click.Path(path_type=Path), help="Write a PNG: the four factor scores of each run.")
def value(runs: tuple[Path, ...], factors_file: Path | None, weights_file: Path | None,
          measured_only: bool, as_json: bool, chart: Path | None) -> None:
    """Value of RUN directories: factor items, the four factor scores, V and its sensitivity."""
    from bigmodel.core import get_registry
    from bigmodel.core import value as vm

    declared = vm.load_declared(factors_file) if factors_file else []
    weights = vm.load_weights(weights_file) if weights_file else vm.WeightsConfig()
    registry = get_registry()
    results = [
        vm.value_of_run(run, registry=registry, declared=declared, weights=weights, measured_only=measured_only)
        for run in runs
    ]
    if chart is not None:
        vm.write_chart(results, chart)
    if as_json:
        click.echo(json.dumps(vm.report_dict(results, weights=weights, measured_only=measured_only), indent=2))
    else:
        _print_reports(results, vm)
    if chart is not None:
        click.echo(f"chart written to {chart}", err=as_json)


def _num(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _print_reports(results, vm) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    for r in results:
        console.rule(f"[bold]{r.run}[/bold]  sector {r.sector}" + (f", task {r.task}" if r.task else ""))
        for f in vm.FACTORS:
            fr = r.factors[f]
            letter = vm.SHAPING_LETTERS[f]
            head = f"{f} — {vm.FACTOR_TITLES[f]}: "
            if fr.score is None:
                head += f"[red]missing ({fr.missing})[/red]"
            else:
                head += f"score {_num(fr.score)}, {letter} = {fr.shaping.describe()} → {letter}({f}) = {_num(fr.shaped)}"
            table = Table(title=head, title_justify="left", show_lines=False, expand=False)
            for col in ("item", "kind", "weight", "share", "value", "evidence"):
                table.add_column(col, overflow="fold")
            for item, share in zip(fr.items, fr.shares):
                table.add_row(item.name, item.kind, f"{item.weight:g}", _num(share), _num(item.value), item.evidence)
            console.print(table)
        for item, why in r.ignored:
            console.print(f"  ignored declared {item.factor}.{item.name} = {_num(item.value)} ({item.evidence}): {why}")
        for spec in r.not_applicable:
            console.print(f"  not applicable to this run: {spec.factor}.{spec.name} — {spec.description}")
        for note in r.notes:
            console.print(f"  note: {note}")
        if r.value is None:
            console.print(f"[bold]V = {vm.FORMULA[4:]} is not computable[/bold]: missing {', '.join(r.missing)}")
        else:
            parts = "·".join(_num(r.factors[f].shaped) for f in vm.FACTORS)
            console.print(f"[bold]V = {vm.FORMULA[4:]} = {parts} = {_num(r.value)}[/bold]")
            moves = "  ".join(f"{f} {_num(r.sensitivity[f], signed=True)}" for f in vm.FACTORS)
            console.print(f"sensitivity (V change when one factor score rises by {vm.SENSITIVITY_STEP}): {moves}")
    if len(results) > 1:
        _print_comparison(results, vm, console)


def _print_comparison(results, vm, console) -> None:
    from rich.table import Table

    table = Table(title="comparison", title_justify="left")
    table.add_column("")
    for label in vm.run_labels(results):
        table.add_column(label, justify="right", overflow="fold")
    for f in vm.FACTORS:
        letter = vm.SHAPING_LETTERS[f]
        table.add_row(f"{f} score", *[_num(r.factors[f].score) for r in results])
        table.add_row(f"{letter}({f})", *[_num(r.factors[f].shaped) for r in results])
    table.add_row("V", *[_num(r.value) if r.value is not None else "not computable" for r in results])

    def lever(r) -> str:
        moves = {f: d for f, d in r.sensitivity.items() if d is not None}
        if not moves:
            return "—"
        best = max(moves, key=moves.get)
        return f"{best} ({_num(moves[best], signed=True)})"

    table.add_row(f"largest +{vm.SENSITIVITY_STEP} lever", *[lever(r) for r in results])
    console.print(table)
