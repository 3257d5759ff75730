"""``bigmodel data``: list the datasets plugins declare and fetch them into the cache."""

from __future__ import annotations

import json

import click

__all__ = ["data"]


@click.group()
def data() -> None:
    """Datasets declared by sector plugins: list, fetch (verified, cached, mirror first)."""


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_datasets(as_json: bool) -> None:
    """Every registered dataset: key, task, licence, files and whether it is cached."""
    from bigmodel.core import get_registry
    from bigmodel.core.data import dataset_dir, is_cached

    rows = []
    for key, spec in get_registry().all("dataset").items():
        rows.append({
            "key": key,
            "task": spec.task,
            "licence": spec.licence,
            "loader": spec.loader,
            "homepage": spec.homepage,
            "files": [f.model_dump() for f in spec.files],
            "cached": is_cached(spec),
            "path": str(dataset_dir(spec)),
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no datasets registered; install a sector, e.g. bigmodel sector install medical")
        return
    width = max(len(r["key"]) for r in rows)
    for row in rows:
        files = ", ".join(f["filename"] for f in row["files"])
        state = "cached" if row["cached"] else "not cached"
        click.echo(f"{row['key']:<{width}}  {row['task']:<8} {state:<10}  licence {row['licence']}  files: {files}")


@data.command("fetch")
@click.argument("dataset", metavar="SECTOR/DATASET")
@click.option("--mirror", metavar="DIR|URL", default=None,
              help="Directory or http(s) URL consulted before the official URLs (default: $BIGMODEL_DATA_MIRROR).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; print only the directory.")
def fetch_dataset(dataset: str, mirror: str | None, quiet: bool) -> None:
    """Download and verify a dataset's files into the cache; print their directory."""
    from bigmodel.core import get_registry
    from bigmodel.core.data import fetch

    spec = get_registry().dataset(dataset)
    folder = fetch(spec, mirror=mirror, progress=not quiet)
    if not quiet:
        click.echo(f"{spec.key}: {len(spec.files)} file(s) verified", err=True)
    click.echo(str(folder))
