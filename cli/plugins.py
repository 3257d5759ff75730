"""``bigmodel plugins`` (what is installed, what each plugin implements, what broke) and ``bigmodel plugin new``."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List plugins: name, version, hooks implemented, status."""
    from bigmodel.core import plugin_infos

    infos = plugin_infos()
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    width = max(len(i.name) for i in infos)
    for info in infos:
        hooks = ", ".join(h.removeprefix("register_") for h in info.hooks) or "-"
        kind = "built-in" if info.builtin else (info.distribution or "?")
        line = f"{info.name:<{width}}  {info.version or '?':<8}  {info.status:<12}  {kind}  [{hooks}]"
        click.echo(line)
        if info.error:
            click.echo(f"{'':<{width}}  error: {info.error}")


@click.group()
def plugin() -> None:
    """Write your own sector plugin: `bigmodel plugin new NAME`."""


@plugin.command("new")
@click.argument("name")
@click.option("--task", "task", type=click.Choice(["text", "image", "tabular"]), default="text", show_default=True,
              help="Task kind of the scaffolded sector.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where to create the NAME/ folder.")
def new(name: str, task: str, directory: str) -> None:
    """Scaffold a complete plugin distribution bigmodel-NAME in DIR/NAME (never overwrites)."""
    from bigmodel.core.scaffold import new_plugin

    target = new_plugin(name, task=task, directory=directory, echo=click.echo)
    sector = name.replace("-", "_")
    click.echo(f"created {target} ({task} sector {sector!r}); next:")
    click.echo(f"  bigmodel sector install {target}")
    click.echo(f"  python -m pytest {target / 'tests'} -q")
    click.echo(f"  bigmodel train {sector} --preset demo")
