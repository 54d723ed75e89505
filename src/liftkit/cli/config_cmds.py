"""``liftkit apply``, ``export``, ``import growthbook``, ``flags stale`` and ``refs``.

Thin shells over ``registry.config_as_code``, ``registry.growthbook_import`` and
``registry.hygiene``: they read options, open the platform, print what the library returns.
``apply`` and ``import`` show a Terraform-style plan and change nothing without ``--yes``; their
exit code is 0 when there is nothing to do (or it was done), 2 when changes were planned but not
applied (so CI can detect drift), 1 on any error.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from liftkit.cli._common import ConfigFile, DatabaseUrl, DataDir, console, fail, open_platform
from liftkit.platform import Platform
from liftkit.registry import config_as_code as cac
from liftkit.registry.errors import RegistryError
from liftkit.registry.features import Feature
from liftkit.registry.growthbook_import import (
    ImportProblem,
    convert,
    desired_objects,
    read_payload,
)
from liftkit.registry.hygiene import find_refs, stale_flags

CHANGES_NOT_APPLIED = 2
_SYMBOLS = {
    "create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red"),
    "pending": ("…", "cyan"),
}  # fmt: skip


class Format(StrEnum):
    table = "table"
    json = "json"


Yes = Annotated[bool, typer.Option("--yes", "-y", help="apply the plan (without it: show only)")]
Actor = Annotated[
    str | None,
    typer.Option(envvar="LIFTKIT_ACTOR", help="name in the audit log (default: cli:USER)"),
]
FormatOption = Annotated[Format, typer.Option("--format", help="table or json")]


def register(app: typer.Typer) -> None:
    """Add the config-as-code and hygiene commands to ``app``."""
    app.command("apply")(apply_files)
    app.command("export")(export)
    app.command("refs")(refs)
    importer = typer.Typer(help="Import flags from other tools.", no_args_is_help=True)
    importer.command("growthbook")(import_growthbook)
    app.add_typer(importer, name="import")
    flags = typer.Typer(help="Flag hygiene.", no_args_is_help=True)
    flags.command("stale")(flags_stale)
    app.add_typer(flags, name="flags")


def apply_files(
    files: Annotated[
        list[Path], typer.Option("--file", "-f", help="YAML file or folder (repeatable)")
    ],
    yes: Yes = False,
    prune: Annotated[
        bool, typer.Option(help="delete live objects missing from the files (their kinds only)")
    ] = False,
    prune_also: Annotated[
        list[str] | None,
        typer.Option(help="also prune this protected collection (projects, environments)"),
    ] = None,
    actor: Actor = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Make the registry match YAML files: print the plan; apply it with --yes.

    Exit code 0: nothing to do, or applied; 2: changes planned but not applied (no --yes).
    """
    try:
        desired = cac.load(files)
    except cac.ConfigError as exc:
        fail("the files have problems:\n  " + "\n  ".join(escape(p) for p in exc.problems))
    with _opened(data_dir, database_url, config) as platform:
        try:
            plan = cac.plan(platform.registry, desired, prune=prune, prune_also=prune_also or [])
        except KeyError as exc:
            fail(escape(str(exc.args[0])))
        _carry_out(platform, plan, yes, _actor(actor))


def export(
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="only these (features, Feature, ...; repeatable)"),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Write the live registry as YAML that `liftkit apply` reads back."""
    with _opened(data_dir, database_url, config) as platform:
        try:
            text = cac.export(platform.registry, collection or None)
        except KeyError as exc:
            fail(escape(str(exc.args[0])))
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {escape(str(output))}: {escape(str(exc))}")
    console.print(f"exported {text.count(chr(10) + 'kind: ')} objects to {escape(str(output))}")


def import_growthbook(
    payload: Annotated[Path, typer.Argument(help="a GrowthBook SDK payload (JSON)")],
    environment: Annotated[str, typer.Option(help="liftkit environment to import into")],
    project: Annotated[str, typer.Option(help="project for the imported objects")] = "default",
    decryption_key: Annotated[
        str | None,
        typer.Option(envvar="LIFTKIT_DECRYPTION_KEY", help="key of an encrypted payload"),
    ] = None,
    yes: Yes = False,
    actor: Actor = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Import a GrowthBook payload's features (and experiments) for one environment.

    Exit codes as for apply. Anything that cannot be carried over exactly is listed as a warning.
    """
    try:
        data = read_payload(payload.read_bytes(), decryption_key)
    except OSError as exc:
        fail(f"cannot read {escape(str(payload))}: {escape(exc.strerror or str(exc))}")
    except ImportProblem as exc:
        fail(escape(str(exc)))
    with _opened(data_dir, database_url, config) as platform:
        registry = platform.registry
        for name, key in (("environments", environment), ("projects", project)):
            if registry.find(name, key) is None:
                known = ", ".join(o.key for o in registry.all(name))
                fail(f"{name[:-1]} {key!r} does not exist (known: {known})")
        imported = convert(data, environment=environment, now=platform.clock(), project=project)
        for warning in imported.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
        try:
            desired = desired_objects(registry, imported, environment)
        except ImportProblem as exc:
            fail(escape(str(exc)))
        _carry_out(platform, cac.plan(registry, desired), yes, _actor(actor))


def flags_stale(
    days: Annotated[int, typer.Option(min=0, help="unchanged for at least this many days")] = 30,
    refs_path: Annotated[
        Path | None, typer.Option("--refs", help="also scan this source tree for archived flags")
    ] = None,
    output_format: FormatOption = Format.table,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """List flags that have done their job, with why and what to do."""
    with _opened(data_dir, database_url, config) as platform:
        registry = platform.registry
        references = None
        if refs_path is not None:
            keys = [f.key for f in registry.all("features")]
            references = find_refs(refs_path, keys).by_key()
        found = stale_flags(registry, platform.clock(), days, references=references)
    if output_format is Format.json:
        typer.echo(json.dumps([f.to_dict() for f in found], indent=2, default=str))
        return
    if not found:
        console.print(f"No stale flags (threshold: {days} days).")
        return
    table = Table(title=f"Stale flags ({days} days)")
    for column in ("flag", "kind", "finding", "why", "suggested action"):
        table.add_column(column)
    for flag in found:
        table.add_row(*(escape(str(v)) for v in (flag.key, flag.kind, flag.category,
                                                  flag.reason, flag.action)))  # fmt: skip
    console.print(table)


def refs(
    path: Annotated[Path, typer.Argument(help="source tree (or file) to scan")],
    key: Annotated[
        list[str] | None, typer.Option("--key", "-k", help="only these flags (repeatable)")
    ] = None,
    output_format: FormatOption = Format.table,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Find where flag keys appear in code, and which flags nothing references."""
    if not path.exists():
        fail(f"{escape(str(path))}: no such file or folder")
    with _opened(data_dir, database_url, config) as platform:
        features: list[Feature] = platform.registry.all("features")
    archived = {f.key for f in features if f.archived}
    report = find_refs(path, key or [f.key for f in features])
    if output_format is Format.json:
        body = {
            "hits": [vars(h) for h in report.hits],
            "unreferenced": report.unreferenced,
            "files_scanned": report.files_scanned,
        }
        typer.echo(json.dumps(body, indent=2))
        return
    table = Table(title=f"Flag references in {escape(str(path))} ({report.files_scanned} files)")
    for column in ("flag", "uses", "where"):
        table.add_column(column)
    for flag, hits in sorted(report.by_key().items()):
        where = ", ".join(f"{h.path}:{h.line}" for h in hits[:3])
        more = f" (+{len(hits) - 3})" if len(hits) > 3 else ""
        label = f"{flag} (archived!)" if flag in archived else flag
        table.add_row(escape(label), str(len(hits)), escape(where + more))
    console.print(table)
    unused = [k for k in report.unreferenced if k not in archived]
    if unused:
        console.print("Not referenced, safe to archive: " + escape(", ".join(unused)))


# -- shared ------------------------------------------------------------------------------------


@contextmanager
def _opened(
    data_dir: Path | None, database_url: str | None, config: Path | None
) -> Iterator[Platform]:
    """The platform for one command, closed afterwards whatever happens."""
    platform = open_platform(data_dir, database_url, config)
    try:
        yield platform
    finally:
        platform.close()


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def _carry_out(platform: Platform, plan: cac.Plan, yes: bool, actor: str) -> None:
    """Print the plan; apply it with ``yes``. Exits 2 when there are changes left unapplied."""
    show_plan(plan)
    if not plan.has_changes:
        console.print("No changes: the registry matches.")
        return
    if not yes:
        console.print("Nothing was changed; run again with --yes to apply this plan.")
        raise typer.Exit(CHANGES_NOT_APPLIED)
    try:
        result = cac.apply(platform.registry, plan, actor)
    except cac.ApplyError as exc:
        done = len(exc.result.published) + len(exc.result.pending_review)
        fail(f"{escape(str(exc))} ({done} earlier changes were applied)")
    except RegistryError as exc:
        fail(escape(str(exc)))
    console.print(f"[green]Applied:[/green] {len(result.published)} changes published.")
    for change, revision in result.pending_review:
        console.print(
            f"[cyan]Awaiting review:[/cyan] {change.kind} {escape(change.key)} revision "
            f"{revision.version} reaches an environment that requires approval; someone other "
            f"than {escape(actor)} must approve it.",
            highlight=False,
        )


def show_plan(plan: cac.Plan) -> None:
    """The plan as a table of changes, then each update's changed paths, like Terraform."""
    listed = [c for c in plan.changes if c.action != "unchanged"]
    if listed:
        table = Table(title="Plan", title_justify="left")
        for column in ("", "kind", "key", "detail"):
            table.add_column(column)
        for change in listed:
            symbol, colour = _SYMBOLS[change.action]
            detail = (
                f"awaiting review (revision {change.pending_version})"
                if change.action == "pending"
                else f"{len(change.diff)} paths changed"
                if change.action == "update"
                else change.source
            )
            table.add_row(f"[{colour}]{symbol}[/{colour}]", change.kind, escape(change.key),
                          escape(detail))  # fmt: skip
        console.print(table)
    for change in plan.changes:
        if change.action != "update":
            continue
        console.print(f"[yellow]~[/yellow] {change.kind} {escape(change.key)}", highlight=False)
        for path_change in change.diff:
            symbol, colour = _SYMBOLS[
                {"added": "create", "removed": "delete", "changed": "update"}[path_change.op]
            ]
            text = (
                f"{_short(path_change.before)} → {_short(path_change.after)}"
                if path_change.op == "changed"
                else _short(path_change.after if path_change.op == "added" else path_change.before)
            )
            console.print(
                f"    [{colour}]{symbol}[/{colour}] {escape(path_change.path)}: {escape(text)}",
                highlight=False,
            )
    console.print(f"Plan: {plan.summary()}.")


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
