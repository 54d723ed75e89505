"""Full-text search over briefs, learnings and results, with filters.

The index (``kb_documents``) is derived data: one row per record with its searchable text and
the columns filters use. It is rebuilt, in one transaction, whenever the registry's epoch or the
newest snapshot id differs from the marker stored with it, so every process sees the same
index without publish hooks, and a search never shows a stale result. Rebuilding all of it is
cheap at knowledge-base sizes (a team's few thousand briefs; see benchmarks/README.md).

The text engine is the database's own: SQLite's FTS5 (``porter unicode61`` tokenizer, BM25
ranking) or PostgreSQL's ``tsvector`` (``english`` configuration, GIN index, ``ts_rank_cd``).
Both read the same query syntax: words (all must match), ``"a phrase"``, ``-word`` to exclude
and ``OR`` between alternatives, with stemming, so "pricing" finds "price".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    String,
    Text,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
)

from liftkit.knowledge.records import Record, load
from liftkit.platform import Platform
from liftkit.registry.tables import kb_documents as docs
from liftkit.registry.tables import meta, snapshots

_MARKERS = ("kb_epoch", "kb_snapshot")
_FTS = "kb_fts"
_TOKEN = re.compile(r'-?"[^"]*"|\S+')
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Filters:
    project: str | None = None
    tag: str | None = None
    outcome: str | None = None
    metric: str | None = None
    team: str | None = None
    stage: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None


@dataclass(frozen=True)
class Hit:
    key: str
    title: str
    project: str
    team: str
    stage: str
    outcome: str | None
    tags: list[str]
    metrics: list[str]
    date: datetime | None
    snippet: str
    rank: float


def document(record: Record) -> dict[str, Any]:
    """The indexed row for a record: what search matches and what filters read."""
    brief = record.brief
    lines = [
        brief.description,
        _hypothesis(record),
        brief.audience,
        f"surface {brief.surface}" if brief.surface else "",
        f"change type {brief.change_type}" if brief.change_type else "",
        f"funnel {brief.funnel_stage}" if brief.funnel_stage else "",
        " ".join(brief.owners),
        " ".join(brief.tags),
        " ".join(record.metrics),
        *brief.answers.values(),
        brief.conclusion.learnings,
        brief.justification,
        f"outcome {record.outcome}" if record.outcome else "",
    ]
    for effect in record.effects:
        lines.append(
            f"{effect.metric} {effect.variation} {effect.effect:+.1%} {effect.significance or ''}"
        )
    when = record.decided_at or record.started_at
    if when is None and brief.planned_start is not None:
        when = datetime.combine(brief.planned_start, time(), tzinfo=UTC)
    if when is not None:
        when = _utc(when)
    return {
        "key": record.key,
        "project": brief.project,
        "title": brief.name or brief.key,
        "body": "\n".join(line for line in lines if line and line.strip()),
        "team": brief.team,
        "stage": record.stage,
        "outcome": record.outcome,
        "tags": "|" + "|".join(brief.tags) + "|",
        "metrics": "|" + "|".join(record.metrics) + "|",
        "date": when,
    }


def _hypothesis(record: Record) -> str:
    h = record.brief.hypothesis
    if h.complete:
        return h.text
    return " ".join(p for p in (h.change, h.audience, h.result, h.reason) if p.strip())


class Index:
    """The search index of one platform database."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.engine: Engine = platform.engine
        self.postgres = self.engine.dialect.name == "postgresql"

    # -- keeping it fresh ----------------------------------------------------------------------

    def marker(self, conn: Connection) -> tuple[int, int]:
        epoch = conn.execute(select(meta.c.value).where(meta.c.name == "epoch")).scalar() or 0
        newest = conn.execute(select(func.max(snapshots.c.id))).scalar() or 0
        return int(epoch), int(newest)

    def stored_marker(self, conn: Connection) -> tuple[int, int] | None:
        rows = dict(
            conn.execute(select(meta.c.name, meta.c.value).where(meta.c.name.in_(_MARKERS))).all()
        )
        if len(rows) != 2:
            return None
        return int(rows["kb_epoch"]), int(rows["kb_snapshot"])

    def refresh(self, *, force: bool = False) -> bool:
        """Rebuild the index if anything it is built from changed; True when it was rebuilt."""
        with self.engine.connect() as conn:
            current = self.marker(conn)
            if not force and self.stored_marker(conn) == current and self._fts_ready(conn):
                return False
        rows = [document(r) for r in load(self.platform)]
        with self.engine.begin() as conn:
            self._ensure_fts(conn)
            conn.execute(delete(docs))
            if rows:
                conn.execute(insert(docs), [{**row, "document": None} for row in rows])
                if self.postgres:
                    words = docs.c.title + " " + docs.c.body
                    conn.execute(docs.update().values(document=func.to_tsvector("english", words)))
                else:
                    conn.execute(text(f"DELETE FROM {_FTS}"))
                    conn.execute(
                        text(f"INSERT INTO {_FTS} (key, title, body) VALUES (:key, :title, :body)"),
                        [{"key": r["key"], "title": r["title"], "body": r["body"]} for r in rows],
                    )
            elif not self.postgres:
                conn.execute(text(f"DELETE FROM {_FTS}"))
            self._store_marker(conn, current)
        return True

    def _fts_ready(self, conn: Connection) -> bool:
        if self.postgres:
            return True
        found = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": _FTS},
        ).first()
        return found is not None

    def _ensure_fts(self, conn: Connection) -> None:
        if not self.postgres:
            conn.execute(
                text(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS {_FTS} USING fts5("
                    "key UNINDEXED, title, body, tokenize = 'porter unicode61')"
                )
            )

    def _store_marker(self, conn: Connection, marker: tuple[int, int]) -> None:
        for name, value in zip(_MARKERS, marker, strict=True):
            updated = conn.execute(meta.update().where(meta.c.name == name).values(value=value))
            if updated.rowcount == 0:
                conn.execute(insert(meta).values(name=name, value=value))

    # -- searching -----------------------------------------------------------------------------

    def search(
        self, query: str = "", filters: Filters | None = None, *, limit: int = 20, offset: int = 0
    ) -> tuple[list[Hit], int]:
        """Matching records, best first (newest first without a query), and the total."""
        self.refresh()
        filters = filters or Filters()
        where = _filter_clauses(filters, self.postgres)
        limit, offset = max(1, min(limit, 200)), max(0, offset)
        match = _fts_query(query) if query.strip() else None
        if query.strip() and match is None:
            return [], 0
        with self.engine.connect() as conn:
            if match is None:
                return self._browse(conn, where, limit, offset)
            if self.postgres:
                return self._search_postgres(conn, query, where, limit, offset)
            return self._search_sqlite(conn, match, where, limit, offset)

    def _browse(
        self, conn: Connection, where: list[Any], limit: int, offset: int
    ) -> tuple[list[Hit], int]:
        total = conn.execute(select(func.count()).select_from(docs).where(*where)).scalar() or 0
        rows = conn.execute(
            select(
                docs,
                func.substr(docs.c.body, 1, 160).label("snippet"),
                literal_column("0.0").label("rank"),
            )
            .where(*where)
            .order_by(docs.c.date.desc().nulls_last(), docs.c.key)
            .limit(limit)
            .offset(offset)
        ).all()
        return [_hit(r) for r in rows], int(total)

    def _search_sqlite(
        self, conn: Connection, match: str, where: list[Any], limit: int, offset: int
    ) -> tuple[list[Hit], int]:
        fts = text(
            f"SELECT key, bm25({_FTS}, 0.0, 4.0, 1.0) AS rank, "
            f"snippet({_FTS}, 2, '**', '**', '…', 16) AS snippet "
            f"FROM {_FTS} WHERE {_FTS} MATCH :match"
        ).columns(key=String(), rank=Float(), snippet=Text())
        found = fts.bindparams(match=match).subquery("fts")
        base = select(docs, found.c.snippet, found.c.rank).join(found, found.c.key == docs.c.key)
        base = base.where(*where)
        total = conn.execute(select(func.count()).select_from(base.subquery())).scalar() or 0
        rows = conn.execute(base.order_by(found.c.rank, docs.c.key).limit(limit).offset(offset))
        return [_hit(r) for r in rows.all()], int(total)

    def _search_postgres(
        self, conn: Connection, query: str, where: list[Any], limit: int, offset: int
    ) -> tuple[list[Hit], int]:
        tsquery = func.websearch_to_tsquery("english", query)
        rank = func.ts_rank_cd(docs.c.document, tsquery).label("rank")
        snippet = func.ts_headline(
            "english", docs.c.body, tsquery,
            "StartSel=**, StopSel=**, MaxWords=24, MinWords=8, MaxFragments=1",
        ).label("snippet")  # fmt: skip
        cond = [docs.c.document.op("@@")(tsquery), *where]
        total = conn.execute(select(func.count()).select_from(docs).where(*cond)).scalar() or 0
        rows = conn.execute(
            select(docs, snippet, rank)
            .where(*cond)
            .order_by(rank.desc(), docs.c.key)
            .limit(limit)
            .offset(offset)
        ).all()
        return [_hit(r) for r in rows], int(total)


def _filter_clauses(f: Filters, postgres: bool) -> list[Any]:
    where: list[Any] = []
    if f.project is not None:
        where.append(docs.c.project == f.project)
    if f.tag:
        where.append(_contains(docs.c.tags, f"|{f.tag}|", postgres))
    if f.metric:
        where.append(_contains(docs.c.metrics, f"|{f.metric}|", postgres))
    if f.outcome:
        where.append(docs.c.outcome == f.outcome)
    if f.team:
        where.append(docs.c.team == f.team)
    if f.stage:
        where.append(docs.c.stage == f.stage)
    if f.date_from is not None:
        where.append(docs.c.date >= _utc(f.date_from))
    if f.date_to is not None:
        where.append(docs.c.date < _utc(f.date_to))
    return where


def _contains(column: Any, text: str, postgres: bool) -> Any:
    """Exact, case-sensitive substring test (LIKE would read ``_`` and ``%`` as wildcards)."""
    return (func.strpos(column, text) if postgres else func.instr(column, text)) > 0


def _utc(when: datetime) -> datetime:
    """SQLite compares stored UTC text, so bounds with another offset are converted first."""
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # within a day of datetime's range: the range's end is the bound
        edge = datetime.max if when.year > 1 else datetime.min
        return edge.replace(tzinfo=UTC)


def _fts_query(query: str) -> str | None:
    """The web-search syntax (words, "phrases", -exclude, OR) as an FTS5 expression."""
    positive: list[str] = []
    negative: list[str] = []
    pending_or = False
    for token in _TOKEN.findall(query):
        if token == "OR":
            pending_or = bool(positive)
            continue
        exclude = token.startswith("-")
        words = _WORD.findall(token.lstrip("-"))
        if not words:
            continue
        phrase = '"' + " ".join(words) + '"'
        if exclude:
            negative.append(phrase)
        elif pending_or:
            positive[-1] = f"({positive[-1]} OR {phrase})"
        else:
            positive.append(phrase)
        pending_or = False
    if not positive:
        return None
    expression = " AND ".join(positive)
    for phrase in negative:
        expression = f"({expression}) NOT {phrase}"
    return expression


def _hit(row: Any) -> Hit:
    return Hit(
        key=row.key,
        title=row.title,
        project=row.project,
        team=row.team,
        stage=row.stage,
        outcome=row.outcome,
        tags=[t for t in row.tags.split("|") if t],
        metrics=[m for m in row.metrics.split("|") if m],
        date=row.date,
        snippet=" ".join(str(row.snippet or "").split()),
        rank=float(row.rank or 0.0),
    )
