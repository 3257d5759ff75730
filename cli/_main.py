"""The root command group; subcommands live in one module each and are attached here."""

from __future__ import annotations

import importlib
import os
import sys

import click

from bigmodel.core._version import __version__
from bigmodel.core.errors import PluginError, RegistryError

# name -> "module:attribute"; each module imports nothing heavy at import time
COMMANDS = {
    "plugins": "bigmodel.cli.plugins:plugins",
    "plugin": "bigmodel.cli.plugins:plugin",
    "sector": "bigmodel.cli.sector:sector",
    "data": "bigmodel.cli.data:data",
    "train": "bigmodel.cli.train:train",
    "evaluate": "bigmodel.cli.train:evaluate",
    "export": "bigmodel.cli.export:export",
    "inspect": "bigmodel.cli.export:inspect_cmd",
    "predict": "bigmodel.cli.predict:predict",
    "bench": "bigmodel.cli.predict:bench",
    "doctor": "bigmodel.cli.predict:doctor",
    "value": "bigmodel.cli.value:value",
}


class _Group(click.Group):
    """Attaches the subcommands whose modules exist; reports user errors in one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if self.get_command(ctx, n) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        ref = COMMANDS.get(name)
        if ref is None:
            return None
        module_name, _, attr = ref.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None  # command not built into this version
            raise
        return getattr(module, attr, None)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (PluginError, RegistryError, ValueError, FileNotFoundError) as exc:
            if os.environ.get("BIGMODEL_DEBUG"):
                raise
            raise click.ClickException(_one_line(exc)) from None


def _one_line(exc: Exception) -> str:
    """A user error as one line; pydantic's multi-line ValidationError becomes 'Model: field 'x': message'."""
    if hasattr(exc, "errors") and hasattr(exc, "title"):  # pydantic.ValidationError, without importing pydantic
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", "")).removeprefix("Value error, ")
        return f"{exc.title}: field {where!r}: {msg}" if where else f"{exc.title}: {msg}"
    if isinstance(exc, RegistryError) and exc.args:
        return str(exc.args[0])
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="bigmodel")
def cli() -> None:
    """Turn a pretrained model into a sector solution: install a sector, train, export, serve."""


def main() -> None:
    cli(prog_name="bigmodel")


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
