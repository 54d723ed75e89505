"""``liftkit kb …``: the knowledge base from the command line.

Briefs are registry objects (``liftkit apply -f briefs.yaml`` writes them); these commands
search them, check them, move them through their lifecycle and report on what was learned.
Every read command takes ``--json`` for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from liftkit.cli._common import ConfigFile, DatabaseUrl, DataDir, console, fail, open_platform
from liftkit.knowledge import digest as digests
from liftkit.knowledge import meta
from liftkit.knowledge.base import KnowledgeBase
from liftkit.knowledge.lifecycle import LifecycleError
from liftkit.knowledge.search import Filters
from liftkit.registry.errors import RegistryError

Key = Annotated[str, typer.Argument(help="the brief's key")]
Actor = Annotated[str, typer.Option("--as", help="who is acting (audit log actor)", envvar="USER")]
Json = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
Project = Annotated[str | None, typer.Option(help="only this project")]


@contextmanager
def _kb(
    data_dir: Path | None, database_url: str | None, config: Path | None
) -> Iterator[KnowledgeBase]:
    platform = open_platform(data_dir, database_url, config)
    try:
        yield KnowledgeBase(platform)
    except (LifecycleError, RegistryError, digests.DigestError) as exc:
        fail(str(exc))
    finally:
        platform.close()


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def register(app: typer.Typer) -> None:
    kb = typer.Typer(help="The knowledge base: briefs, search, learnings, planning.",
                     no_args_is_help=True)  # fmt: skip
    for name, fn in (
        ("search", search), ("show", show), ("checklist", checklist), ("similar", similar),
        ("submit", submit), ("review", review), ("launch", launch), ("conclude", conclude),
        ("ship", ship), ("move", move), ("ideas", ideas), ("wins", wins), ("effects", effects),
        ("impact", impact), ("leaderboard", leaderboard), ("digest", digest),
        ("calendar", calendar), ("remind", remind), ("reindex", reindex),
    ):  # fmt: skip
        kb.command(name)(fn)
    app.add_typer(kb, name="kb")


def search(
    query: Annotated[str, typer.Argument(help='words, "a phrase", -exclude, OR')] = "",
    tag: str | None = None, outcome: str | None = None, metric: str | None = None,
    team: str | None = None, stage: str | None = None, project: Project = None,
    since: Annotated[datetime | None, typer.Option("--from", help="decided or started from")] = None,  # noqa: E501
    until: Annotated[datetime | None, typer.Option("--to", help="… and before this")] = None,
    limit: int = 20, as_json: Json = False,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None,
) -> None:  # fmt: skip
    """Search briefs, learnings and results."""
    with _kb(data_dir, database_url, config) as kb:
        filters = Filters(project, tag, outcome, metric, team, stage, since, until)
        hits, total = kb.search(query, filters, limit=limit)
        if as_json:
            _print_json({"items": [asdict(h) for h in hits], "total": total})
            return
        _table(f"{total} found", ["key", "title", "stage", "outcome", "team", "snippet"],
               [[h.key, h.title, h.stage, h.outcome, h.team, h.snippet] for h in hits])  # fmt: skip


def show(key: Key, data_dir: DataDir = None, database_url: DatabaseUrl = None,
         config: ConfigFile = None) -> None:  # fmt: skip
    """A brief with its stage, outcome and measured effects."""
    with _kb(data_dir, database_url, config) as kb:
        from liftkit.api.knowledge import view

        _print_json(view(kb.record(key)).model_dump(mode="json"))


def checklist(key: Key, as_json: Json = False, data_dir: DataDir = None,
              database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:  # fmt: skip
    """The pre-launch checklist (exit status 1 when an item fails)."""
    with _kb(data_dir, database_url, config) as kb:
        items = kb.checklist(kb.brief(key))
    if as_json:
        _print_json([asdict(i) for i in items])
    else:
        marks = {"pass": "[green]✓[/green]", "warn": "[yellow]![/yellow]",
                 "fail": "[red]✗[/red]", "skip": "–"}  # fmt: skip
        for item in items:
            console.print(f"{marks[item.status]} {item.label}: {item.detail}")
    if any(i.status == "fail" for i in items):
        raise typer.Exit(1)


def similar(key: Key, limit: int = 5, as_json: Json = False, data_dir: DataDir = None,
            database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:  # fmt: skip
    """Past experiments most like this brief, with their outcomes."""
    with _kb(data_dir, database_url, config) as kb:
        matches = kb.similar(kb.brief(key), limit=limit)
    if as_json:
        _print_json([asdict(m) for m in matches])
        return
    _table("similar experiments", ["key", "title", "outcome", "score", "near-duplicate"],
           [[m.key, m.title, m.outcome or m.stage, f"{m.score:.2f}",
             ("yes, failed" if m.failed else "yes") if m.near_duplicate else ""]
            for m in matches])  # fmt: skip


def _moving(
    action: Callable[[KnowledgeBase], Any], data_dir: Path | None, database_url: str | None,
    config: Path | None,
) -> None:  # fmt: skip
    with _kb(data_dir, database_url, config) as kb:
        brief = action(kb)
        console.print(f"{brief.key}: {kb.record(brief.key).stage}")


def submit(key: Key, actor: Actor = "cli", data_dir: DataDir = None,
           database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:  # fmt: skip
    """Submit a brief for review (its writing must be complete)."""
    _moving(lambda kb: kb.submit(key, f"user:{actor}"), data_dir, database_url, config)


def review(
    key: Key, decision: Annotated[str, typer.Argument(help="approve or changes")],
    comment: str = "", actor: Actor = "cli", data_dir: DataDir = None,
    database_url: DatabaseUrl = None, config: ConfigFile = None,
) -> None:  # fmt: skip
    """Approve a brief or ask for changes (not by its authors)."""
    if decision not in ("approve", "changes"):
        fail("decision: use approve or changes")
    _moving(lambda kb: kb.review(key, f"user:{actor}", decision, comment), data_dir,
            database_url, config)  # fmt: skip


def launch(key: Key, actor: Actor = "cli", data_dir: DataDir = None,
           database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:  # fmt: skip
    """Launch an approved brief whose checklist passes (starts its draft experiment)."""
    _moving(lambda kb: kb.launch(key, f"user:{actor}"), data_dir, database_url, config)


def conclude(
    key: Key, outcome: Annotated[str, typer.Argument(help="won, lost, inconclusive or dnf")],
    learnings: str = "", actor: Actor = "cli", data_dir: DataDir = None,
    database_url: DatabaseUrl = None, config: ConfigFile = None,
) -> None:  # fmt: skip
    """Record the outcome and the learnings."""
    if outcome not in ("won", "lost", "inconclusive", "dnf"):
        fail("outcome: use won, lost, inconclusive or dnf")
    _moving(lambda kb: kb.conclude(key, f"user:{actor}", outcome, learnings),  # type: ignore[arg-type]
            data_dir, database_url, config)  # fmt: skip


def ship(key: Key, actor: Actor = "cli", data_dir: DataDir = None,
         database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:  # fmt: skip
    """Mark a won brief shipped."""
    _moving(lambda kb: kb.ship(key, f"user:{actor}"), data_dir, database_url, config)


def move(
    key: Key, to: Annotated[str, typer.Argument(help="idea, planned or archived")],
    actor: Actor = "cli", data_dir: DataDir = None, database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:  # fmt: skip
    """Move a brief between idea and planned, withdraw it from review, or archive it."""
    if to not in ("idea", "planned", "archived"):
        fail("to: use idea, planned or archived (the other stages have their own command)")
    _moving(lambda kb: kb.move(key, to, f"user:{actor}"), data_dir, database_url, config)  # type: ignore[arg-type]


def ideas(project: Project = None, as_json: Json = False, data_dir: DataDir = None,
          database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:  # fmt: skip
    """The backlog ranked by score, with 12-month impact and weeks needed."""
    with _kb(data_dir, database_url, config) as kb:
        found, framework = kb.ideas(project), kb.settings().scoring
    if as_json:
        _print_json([{"key": i.record.key, "score": i.score, "opportunity": asdict(i.opportunity),
                      "feasibility": asdict(i.feasibility)} for i in found])  # fmt: skip
        return
    _table(f"ideas by {framework.upper()}", ["key", "title", "score", "12-month impact", "weeks"],
           [[i.record.key, i.record.brief.name, _num(i.score), _num(i.opportunity.impact_per_year),
             _num(i.feasibility.weeks)] for i in found])  # fmt: skip


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}"


def wins(
    by: Annotated[str, typer.Option(help="tag, funnel_stage, change_type, team, quarter")] = "tag",
    project: Project = None, as_json: Json = False, data_dir: DataDir = None,
    database_url: DatabaseUrl = None, config: ConfigFile = None,
) -> None:  # fmt: skip
    """Win rate by tag, funnel stage, change type, team or quarter."""
    if by not in ("tag", "funnel_stage", "change_type", "team", "quarter"):
        fail("by: use tag, funnel_stage, change_type, team or quarter")
    with _kb(data_dir, database_url, config) as kb:
        rates = meta.win_rates(kb.records(project), by)  # type: ignore[arg-type]
    if as_json:
        _print_json([asdict(r) for r in rates])
        return
    _table(f"win rate by {by}", [by, "won", "lost", "inconclusive", "win rate (95% CI)"],
           [[r.group, r.won, r.lost, r.inconclusive,
             "—" if r.win_rate is None else f"{r.win_rate:.0%} ({r.low:.0%}–{r.high:.0%})"]
            for r in rates])  # fmt: skip


def effects(project: Project = None, as_json: Json = False, data_dir: DataDir = None,
            database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:  # fmt: skip
    """Past effects per metric, with the learned prior and default MDE for new experiments."""
    with _kb(data_dir, database_url, config) as kb:
        history = kb.history(kb.records(project))
    if as_json:
        _print_json([asdict(h) for h in history])
        return
    _table("effects per metric", ["metric", "n", "median", "p10–p90", "prior", "default MDE"],
           [[h.metric, h.n, f"{h.median:+.2%}", f"{h.p10:+.2%} … {h.p90:+.2%}",
             f"N({h.prior.mean:+.2%}, {h.prior.variance ** 0.5:.2%}²)" if h.prior.proper
             else "flat", "—" if h.default_mde is None else f"{h.default_mde:.2%}"]
            for h in history])  # fmt: skip


def impact(project: Project = None, as_json: Json = False, data_dir: DataDir = None,
           database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:  # fmt: skip
    """Cumulative measured impact of shipped winners, shrunk toward zero."""
    with _kb(data_dir, database_url, config) as kb:
        series = meta.cumulative_impact(kb.records(project))
    if as_json:
        _print_json([asdict(s) for s in series])
        return
    _table("cumulative impact", ["metric", "winners", "measured", "shrunk"],
           [[s.metric, len(s.impacts), f"{s.total_raw:+.2%}", f"{s.total_shrunk:+.2%}"]
            for s in series])  # fmt: skip


def leaderboard(project: Project = None, as_json: Json = False, data_dir: DataDir = None,
                database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:  # fmt: skip
    """The most impactful experiments and contributors."""
    with _kb(data_dir, database_url, config) as kb:
        board = meta.leaderboard(kb.records(project))
    if as_json:
        _print_json(asdict(board))
        return
    _table(
        "top experiments",
        ["key", "title", "metric", "shrunk effect"],
        [[e.experiment, e.name, e.metric, f"{e.shrunk:+.2%}"] for e in board.experiments],
    )
    _table("top contributors", ["who", "experiments", "wins", "learnings", "shrunk impact"],
           [[c.owner, c.experiments, c.wins, c.learnings, f"{c.impact:+.2%}"]
            for c in board.contributors])  # fmt: skip


def digest(
    month: Annotated[str, typer.Option(help="YYYY-MM (default: last month)")] = "",
    html: Annotated[bool, typer.Option("--html", help="print HTML instead of Markdown")] = False,
    send: Annotated[bool, typer.Option("--send", help="mail it (smtp_url setting)")] = False,
    to: Annotated[list[str] | None, typer.Option("--to", help="recipient (repeatable)")] = None,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None,
) -> None:  # fmt: skip
    """The monthly digest: what was learned, won and lost."""
    with _kb(data_dir, database_url, config) as kb:
        when = _month(month, kb.platform.clock().date())
        base = kb.platform.settings.base_url
        if send:
            kb.send_digest(when, to or None)
            console.print(f"digest for {when:%B %Y} sent")
            return
        built = kb.digest(when)
        render = digests.html if html else digests.markdown
        text = render(built, base_url=base)
        typer.echo(text)


def _month(text: str, today: date) -> date:
    if not text:
        first = today.replace(day=1)
        return (first.replace(year=first.year - 1, month=12) if first.month == 1
                else first.replace(month=first.month - 1))  # fmt: skip
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        fail(f"month: {text!r} is not YYYY-MM")


def calendar(
    project: Project = None,
    ics: Annotated[Path | None, typer.Option(help="also write an iCalendar file here")] = None,
    as_json: Json = False, data_dir: DataDir = None, database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:  # fmt: skip
    """Planned and running experiments, with conflicts flagged."""
    with _kb(data_dir, database_url, config) as kb:
        entries, conflicts = kb.calendar(project)
        if ics is not None:
            ics.write_bytes(kb.ics(project))
    if as_json:
        _print_json({"entries": [asdict(e) for e in entries],
                     "conflicts": [asdict(c) for c in conflicts]})  # fmt: skip
        return
    clashing = {k for c in conflicts for k in (c.a, c.b)}
    _table("calendar", ["key", "stage", "surface", "team", "start", "end", ""],
           [[e.key, e.stage, e.surface, e.team, f"{e.start:%Y-%m-%d}", f"{e.end:%Y-%m-%d}",
             "⚠ conflict" if e.key in clashing else ""] for e in entries])  # fmt: skip
    for c in conflicts:
        console.print(f"[yellow]conflict[/yellow] {c.a} × {c.b}: {', '.join(c.reasons)}")


def remind(
    send: Annotated[bool, typer.Option("--send", help="queue and deliver to the webhooks")] = False,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None,
) -> None:  # fmt: skip
    """Reminders due now: experiments ending, overdue decisions, warranties ending."""
    from liftkit.automation.notify import Notifier
    from liftkit.knowledge import reminders

    with _kb(data_dir, database_url, config) as kb:
        due = kb.reminders()
        for r in due:
            console.print(f"{r.kind}: {r.title} — {r.message}")
        if send:
            notifier = Notifier(kb.platform.engine, clock=kb.platform.clock)
            try:
                queued = reminders.send(notifier, due, kb.settings())
                delivered = notifier.deliver_due()
            finally:
                notifier.close()
            console.print(f"{queued} queued, {delivered} delivered")


def reindex(data_dir: DataDir = None, database_url: DatabaseUrl = None,
            config: ConfigFile = None) -> None:  # fmt: skip
    """Rebuild the search index now (searches rebuild it themselves when it is stale)."""
    with _kb(data_dir, database_url, config) as kb:
        kb.index.refresh(force=True)
        console.print("search index rebuilt")
