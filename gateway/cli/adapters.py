"""`adapters`: the installed adapters and the gateway home's declared mappings; `adapters check` and
`adapters add` run the conformance kit on a mapping, `adapters remove` takes one away.

Declared mappings live in the home's `formats/` folder (setting formats_dir), one `<name>.toml` each, not
in the database: the agent, which has no database, reads the same files (its `formats` key); a mapping is
configuration a bank reviews and versions like directlink.toml; and the registry sees a new file at the
next request, so adding needs no restart. Every replica needs the file, as it needs directlink.toml:
`directlink adapters` prints each mapping's sha256 to compare them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import Home, fail, home_settings
from gateway.cli.listing import Json, show

adapters_app = typer.Typer(help="ERP adapters and declared formats: list, check, add, remove.",
                           invoke_without_command=True)
Golden = Annotated[Path | None, typer.Option("--golden", help="the mapping's golden cases (default: its `golden` key)")]


@adapters_app.callback(invoke_without_command=True)
def list_adapters(ctx: typer.Context, home: Home = Path("."), as_json: Json = False) -> None:
    """List the adapters, their formats and limits; declared mappings with their file and sha256."""
    if ctx.invoked_subcommand is not None:
        return
    from adapters.registry import AdapterError, declared, installed
    from gateway.settings import Settings
    try:
        builtin = installed()
    except AdapterError as err:
        fail(str(err))
    folder = Settings.load(home).formats
    usable, broken = declared(folder)
    if as_json:
        show([_row(a) for a in builtin.values()]
             + [{**_row(d.adapter), "declared_in": str(folder / (name + ".toml")), "sha256": d.digest}
                for name, d in usable.items()], lambda r: "", True, "")
    else:
        for a in builtin.values():
            _show(a)
        for name, d in usable.items():
            _show(d.adapter, f"declared in {folder / (name + '.toml')}, sha256 {d.digest}")
    for file, why in broken.items():
        typer.echo(f"{folder / file}: cannot be used: {why}", err=True)
    if not builtin and not usable and not as_json:
        typer.echo("no adapters installed")
    if broken:
        raise typer.Exit(1)


def _show(a, origin: str = "") -> None:
    typer.echo(f"{a.name}: {a.description}")
    if origin:
        typer.echo(f"  {origin}")
    for kind, formats in (("reads payments", a.payment_readers), ("writes statements", a.statement_writers),
                          ("reads statements", a.statement_readers), ("writes statuses", a.status_writers)):
        if formats:
            typer.echo(f"  {kind}: {', '.join(formats)}")
    typer.echo(f"  limits: {a.limits.max_transactions} transactions a file, amounts in {a.limits.amount_unit} "
               f"units, encodings {', '.join(a.limits.encodings)}")


def _row(a) -> dict:
    """An adapter for --json: the formats of each kind and its limits."""
    return {"name": a.name, "description": a.description,
            **{kind: list(getattr(a, kind)) for kind in ("payment_readers", "statement_writers",
                                                         "statement_readers", "status_writers")},
            "limits": {"max_transactions": a.limits.max_transactions, "amount_unit": a.limits.amount_unit,
                       "encodings": list(a.limits.encodings)}}


def _checked(file: Path, golden: Path | None, folder: Path | None):
    """The mapping in `file`, having passed the kit; exits 2 listing every fault with its line and key."""
    from adapters.declared import MappingError, load
    from adapters.kit_mapping import check
    from adapters.registry import declared, installed
    try:
        mapping = load(file)
    except MappingError as err:
        fail(f"{file}: {err}")
    failures = check(mapping, installed(), golden)
    if folder is not None:    # formats of the other declared mappings of this home are taken too
        for other, d in declared(folder)[0].items():
            taken = set(d.adapter.formats) & set(mapping.adapter.formats)
            if other != mapping.mapping.name and taken:
                fail(f"{file}: format {sorted(taken)[0]!r} belongs to the declared mapping {other!r}")
    if failures:
        for f in failures:
            typer.echo(f"{file}: {f}", err=True)
        fail(f"{file}: {len(failures)} check(s) failed; nothing was added")
    return mapping


@adapters_app.command("check")
def check_mapping(file: Path, golden: Golden = None) -> None:
    """Run the conformance kit on a mapping file without adding it."""
    mapping = _checked(file, golden, None)
    typer.echo(f"{file}: mapping {mapping.mapping.name!r} passes the conformance kit "
               f"({', '.join(mapping.adapter.formats)})")


@adapters_app.command("add")
def add_mapping(file: Path, home: Home = Path("."), golden: Golden = None,
                replace: Annotated[bool, typer.Option("--replace", help="replace a mapping of the same name")] = False,
                ) -> None:
    """Check a mapping with the conformance kit and add it to the home's formats/ (no restart needed)."""
    settings = home_settings(home)
    folder = settings.formats
    mapping = _checked(file, golden, folder)
    target = folder / f"{mapping.mapping.name}.toml"
    if target.exists():
        if target.read_text("utf-8") == mapping.mapping.source:
            typer.echo(f"{target}: already added, unchanged (sha256 {mapping.digest})")
            return
        if not replace:
            fail(f"{target} holds another version of {mapping.mapping.name!r}: give --replace to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(".toml.part")      # not *.toml: never read half-written
    part.write_text(mapping.mapping.source, "utf-8")
    os.replace(part, target)
    typer.echo(f"added {mapping.mapping.name} ({', '.join(mapping.adapter.formats)}) as {target}, "
               f"sha256 {mapping.digest}; the gateway serves it from its next request (copy the file to every "
               "replica's home)")


@adapters_app.command("remove")
def remove_mapping(name: str, home: Home = Path(".")) -> None:
    """Remove a declared mapping from the home's formats/ (its formats are refused from the next request)."""
    target = home_settings(home).formats / f"{name}.toml"
    if not target.is_file():
        fail(f"no declared mapping {name!r} in {target.parent}")
    target.unlink()
    typer.echo(f"removed {target}")
