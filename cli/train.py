"""``bigmodel train`` and ``bigmodel evaluate`` (the engine is imported inside the commands)."""

from __future__ import annotations

import json

import click

__all__ = ["train", "evaluate"]


def _parse_options(items: tuple[str, ...]) -> dict | None:
    import yaml

    options = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--loader-option")
        try:
            options[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            options[key.strip()] = raw
    return options or None


@click.command()
@click.argument("sector")
@click.option("--task", "task", default=None, help="task of the sector (default: its first)")
@click.option("--data", "data", type=click.Path(exists=True), default=None, help="local data instead of the declared dataset")
@click.option("--loader", default=None, help="registered loader for --data (default: guessed from the path)")
@click.option("--loader-option", "loader_option", multiple=True, metavar="KEY=VALUE",
              help="option for the loader, value parsed as YAML (e.g. target=class, numeric=[age,amount])")
@click.option("--base-model", default=None, metavar="ID|PATH", help="hub id, local directory/file, or package:<module>")
@click.option("--recipe", "recipe_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TOML/YAML file of recipe fields")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override one recipe field (repeatable)")
@click.option("--preset", default=None, help="named preset of the task (e.g. demo, full)")
@click.option("--out", default=None, type=click.Path(), help="run directory (default: runs/<sector>-<task>)")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--resume", is_flag=True, help="continue the interrupted run in <out>.partial from its last checkpoint")
@click.option("--overwrite", is_flag=True, help="replace an existing run (or interrupted run) at --out")
@click.option("--labels", "labels", type=click.Path(exists=True, dir_okay=False), default=None,
              help="your own label set instead of the sector's: a JSON label map or one label per line")
@click.option("--extend-labels", is_flag=True, help="add labels found in the data but not in the label map")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars or messages")
def train(sector, task, data, loader, loader_option, base_model, recipe_file, sets, preset, out, seed, resume, overwrite,
          labels, extend_labels, quiet):
    """Fine-tune SECTOR's model and write a run directory."""
    from bigmodel.core.train import train as run_training

    path = run_training(sector, task=task, data=data, loader=loader, base_model=base_model, recipe_file=recipe_file,
                        sets=sets, preset=preset, out=out, seed=seed, resume=resume, quiet=quiet,
                        extend_labels=extend_labels, overwrite=overwrite, labels=labels,
                        loader_options=_parse_options(loader_option))
    click.echo(str(path))


@click.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--data", type=click.Path(exists=True), default=None, help="evaluate on this data instead of the run's")
@click.option("--loader", default=None, help="registered loader for --data")
@click.option("--split", default=None, type=click.Choice(["train", "validation", "test"]),
              help="split to evaluate (default: test; with --data holding one file, that file)")
@click.option("--batch-size", type=int, default=None, help="evaluation batch size (default: the recipe's)")
@click.option("--json", "as_json", is_flag=True, help="print the metrics as JSON")
def evaluate(run, data, loader, split, batch_size, as_json):
    """Compute the sector's and the generic metrics of RUN; write metrics.json and PNGs into it."""
    from bigmodel.core.evaluate import evaluate as run_evaluation

    metrics = run_evaluation(run, data=data, split=split, loader=loader, batch_size=batch_size, quiet=as_json)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    click.echo(f"{run} — {split or 'test'}" + (f" of {data}" if data else ""))
    for name, value in metrics.items():
        if isinstance(value, float):
            click.echo(f"  {name:<24} {value:.4f}")
        elif isinstance(value, (int, str)) or value is None:
            click.echo(f"  {name:<24} {value}")
        else:
            click.echo(f"  {name:<24} {json.dumps(value)[:200]}")
