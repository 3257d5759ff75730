"""``bigmodel sector``: list, describe, install and uninstall sector plugins."""

from __future__ import annotations

import json
import subprocess
import sys

import click


@click.group()
def sector() -> None:
    """Sector solutions: list, info, install, uninstall."""


@sector.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_sectors(as_json: bool) -> None:
    """Installed sectors and their tasks."""
    from bigmodel.core import get_registry, plugin_infos

    registry = get_registry()
    rows = []
    for name, spec in registry.all("sector").items():
        info = next(i for i in plugin_infos() if i.name == registry.plugin_of("sector", name))
        rows.append({"name": name, "title": spec.title, "tasks": [t.name for t in spec.tasks],
                     "plugin": info.name, "version": info.version})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no sectors installed; try: bigmodel sector install medical")
    for row in rows:
        click.echo(f"{row['name']:<20} {row['title']}  (tasks: {', '.join(row['tasks'])}; {row['plugin']} {row['version']})")
    for info in plugin_infos():
        if info.status != "ok":
            click.echo(f"{info.name:<20} [{info.status}] {info.error}", err=True)


@sector.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(name: str, as_json: bool) -> None:
    """Datasets, models, label maps and recipes a sector brings."""
    from bigmodel.core import get_registry

    from ._sector_ops import describe

    data = describe(get_registry(), name)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"{data['name']}: {data['title']}")
    if data["description"]:
        click.echo(f"  {data['description']}")
    for task in data["tasks"]:
        click.echo(f"  task {task['name']} ({task['kind']}): {task['description']}")
        click.echo(f"    model: {task['model']} (base {task['base_model']}, licence {task['model_licence']})")
        names = task["labels"]
        shown = ", ".join(names[:8]) + (f", … ({len(names)} labels)" if len(names) > 8 else "")
        click.echo(f"    labels: {shown}")
        click.echo(f"    datasets: {', '.join(task['datasets']) or '-'}")
        click.echo(f"    metrics: {', '.join(task['metrics']) or '-'}")
        click.echo(f"    recipe: {task['recipe_class']}; presets: {', '.join(task['presets']) or '-'}")
    for ds in data["datasets"]:
        click.echo(f"  dataset {ds['key']}: {ds['licence']}; {', '.join(ds['urls'])}")
    for vf in data["value_factors"]:
        click.echo(f"  value factor {vf['factor']}.{vf['name']} (weight {vf['weight']}): {vf['description']}")


@sector.command("install")
@click.argument("target")
@click.option("-e", "--editable", is_flag=True, help="Editable install (paths only).")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade if already installed.")
def install(target: str, editable: bool, upgrade: bool) -> None:
    """Install a sector by short NAME, PATH or pip REQUIREMENT, then validate it."""
    from ._sector_ops import install_sector

    added = install_sector(target, editable=editable, upgrade=upgrade, echo=click.echo)
    click.echo(f"installed {added['distribution']} {added['version']}: plugin {added['plugin']!r}")
    for kind, keys in added["registered"].items():
        if keys:
            click.echo(f"  {kind}: {', '.join(keys)}")


@sector.command("uninstall")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall(name: str, yes: bool) -> None:
    """Remove a sector plugin's distribution (works even when the plugin is broken)."""
    from bigmodel.core import normalise_sector_name

    from ._sector_ops import distribution_of_plugin

    dist = distribution_of_plugin(name)
    if not yes:
        click.confirm(f"uninstall {dist} (sector {normalise_sector_name(name)})?", abort=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", dist], capture_output=True, text=True)
    if proc.returncode != 0:
        raise click.ClickException(f"pip uninstall {dist} failed: {proc.stderr.strip().splitlines()[-1:]}")
    click.echo(f"uninstalled {dist}")


@sector.command("validate", hidden=True)
@click.argument("plugin")
def validate(plugin: str) -> None:
    """Load PLUGIN, validate everything it registers, print what it added as JSON (used by install)."""
    from ._sector_ops import validate_plugin

    click.echo(json.dumps(validate_plugin(plugin)))
