"""``bigmodel plugins``: what is installed, what each plugin implements, and what broke."""

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
