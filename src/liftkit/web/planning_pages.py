"""Planning and reporting pages: ideas by score, the calendar with its conflicts, the
leaderboard (with win rates and cumulative impact), and the monthly digest.

Each page shows what the ``KnowledgeBase`` facade computes for ``/api/v1/kb`` (``ideas``,
``calendar``, ``meta.leaderboard``, ``digest``), limited to the projects the viewer may read
and to the switcher's project, so the numbers match the API's.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from liftkit.knowledge import calendar, meta
from liftkit.knowledge import digest as digests
from liftkit.knowledge.base import Idea, KnowledgeBase
from liftkit.web._core import FormError, Viewer, Web, form
from liftkit.web.brief_pages import SCORE_FIELDS
from liftkit.web.kb_common import parse_day, readable, readable_records, render, words

#: Orderings of the ideas table (``score`` is the facade's own).
SORTS = ("score", "opportunity", "weeks", "title")
CALENDAR_WEEKS = 10


def sort_ideas(ideas: list[Idea], by: str) -> list[Idea]:
    """The facade's order for ``score``; the other orders put missing values last."""

    def missing_last(value: float | None, sign: float, idea: Idea) -> tuple[bool, float, str]:
        return (value is None, sign * (value or 0.0), idea.record.key)

    if by == "opportunity":
        return sorted(ideas, key=lambda i: missing_last(i.opportunity.impact_per_year, -1, i))
    if by == "weeks":
        return sorted(ideas, key=lambda i: missing_last(i.feasibility.weeks, 1, i))
    if by == "title":
        return sorted(
            ideas, key=lambda i: ((i.record.brief.name or i.record.key).lower(), i.record.key)
        )
    return ideas


@dataclass(frozen=True)
class Row:
    """One calendar entry across the window's weeks: per week, active and/or in conflict."""

    entry: calendar.Entry
    cells: list[tuple[bool, bool]]
    conflict: bool


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def calendar_rows(
    entries: list[calendar.Entry], conflicts: list[calendar.Conflict], weeks: list[date]
) -> list[Row]:
    """Entries overlapping the window, each with its weeks marked active and conflicting."""
    start, end = _utc(weeks[0]), _utc(weeks[-1] + timedelta(days=7))
    rows = []
    for e in entries:
        if not (e.start < end and e.end > start):
            continue
        mine = [c for c in conflicts if e.key in (c.a, c.b)]
        cells = []
        for w in weeks:
            lo, hi = _utc(w), _utc(w + timedelta(days=7))
            active = e.start < hi and e.end > lo
            clash = any(c.start < hi and c.end > lo for c in mine)
            cells.append((active, active and clash))
        rows.append(Row(e, cells, bool(mine)))
    return rows


def last_day(end: datetime) -> str:
    """The last day an exclusive ``[start, end)`` range covers, as people write ranges."""
    return (end - timedelta(microseconds=1)).date().isoformat()


def month_of(value: str, today: date) -> date:
    """``2026-11`` (an ``<input type=month>``) or any day of the month; empty: this month."""
    value = value.strip()
    if not value:
        return today.replace(day=1)
    try:
        return date.fromisoformat(value + "-01" if len(value) == 7 else value).replace(day=1)
    except ValueError:
        raise FormError("month", f"{value!r} is not a month (YYYY-MM)") from None


def shift_month(month: date, by: int) -> date:
    index = month.year * 12 + month.month - 1 + by
    return date(index // 12, index % 12 + 1, 1)


def _new_tabs(page: str) -> str:
    """The mail's links open in a new tab: inside the sandboxed preview they would not work."""
    return page.replace("<head>", '<head>\n<base target="_blank">', 1)


def router(web: Web, route_class: type, kb: KnowledgeBase) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    platform = web.platform
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    def today() -> date:
        return platform.clock().astimezone(UTC).date()

    @r.get("/ideas")
    def ideas(request: Request, viewer: Current, sort: str = "score") -> Response:
        if sort not in SORTS:
            raise FormError("sort", f"sort by one of {', '.join(SORTS)}")
        found = readable(viewer, kb.ideas(viewer.project), lambda i: i.record.brief.project)
        scoring = kb.settings().scoring
        return render(
            web, request, "knowledge/ideas.html", viewer, ideas=sort_ideas(found, sort),
            sort=sort, scoring=scoring, score_fields=SCORE_FIELDS[scoring],
        )  # fmt: skip

    @r.get("/calendar")
    def calendar_page(
        request: Request,
        viewer: Current,
        start: str = "",
        weeks: Annotated[int, Query(ge=1, le=52)] = CALENDAR_WEEKS,
    ) -> Response:
        first = parse_day("start", start) or (today().replace(day=1) - timedelta(days=14))
        first -= timedelta(days=first.weekday())  # weeks start on Monday
        columns = [first + timedelta(weeks=i) for i in range(weeks)]
        entries, conflicts = kb.calendar(viewer.project)
        entries = readable(viewer, entries, lambda e: e.project)
        shown = {e.key for e in entries}
        conflicts = [c for c in conflicts if c.a in shown and c.b in shown]
        rows = calendar_rows(entries, conflicts, columns)
        window = (_utc(columns[0]), _utc(columns[-1] + timedelta(days=7)))
        visible = [c for c in conflicts if c.start < window[1] and c.end > window[0]]
        names = {e.key: e.name for e in entries}
        step, now = timedelta(weeks=max(1, weeks // 2)), today()
        current = next((w for w in columns if w <= now < w + timedelta(days=7)), None)
        ics = "/api/v1/kb/calendar.ics" + (f"?project={viewer.project}" if viewer.project else "")
        return render(
            web, request, "knowledge/calendar.html", viewer, rows=rows, weeks=columns,
            conflicts=visible, names=names, total_conflicts=len(conflicts), ics=ics,
            earlier=(columns[0] - step).isoformat(), later=(columns[0] + step).isoformat(),
            length=weeks, last_day=last_day, current_week=current,
        )  # fmt: skip

    @r.get("/leaderboard")
    def leaderboard(request: Request, viewer: Current, by: str = "team") -> Response:
        if by not in meta.GROUPINGS:
            raise FormError("by", f"group by one of {', '.join(meta.GROUPINGS)}")
        records = readable_records(viewer, kb.records(viewer.project))
        return render(
            web, request, "knowledge/leaderboard.html", viewer,
            board=meta.leaderboard(records), rates=meta.win_rates(records, by),
            impact=meta.cumulative_impact(records), by=by, groupings=meta.GROUPINGS,
        )  # fmt: skip

    @r.get("/digest")
    def digest_page(request: Request, viewer: Current, month: str = "") -> Response:
        viewer.principal.require("viewer", None, "reading the digest")
        first = month_of(month, today())
        built = kb.digest(first)
        base = platform.settings.base_url
        return render(
            web, request, "knowledge/digest.html", viewer, digest=built, month=first,
            html=_new_tabs(digests.html(built, base_url=base)), previous=shift_month(first, -1),
            next=shift_month(first, 1), can_send=viewer.can("editor", None),
            mail_ready=bool(platform.settings.smtp_url),
            recipients=kb.settings().digest_recipients,
        )  # fmt: skip

    @r.post("/digest/send")
    async def send_digest(request: Request, viewer: Current) -> Response:
        """Mail the digest now, with the checks and messages of ``POST /api/v1/kb/digest/send``."""
        viewer.principal.require("editor", None, "sending the digest")
        data = await form(request)
        first = month_of(data.get("month", ""), today())
        recipients = words(data.get("recipients", ""))
        if not platform.settings.smtp_url:
            raise FormError("smtp_url", "no mail server is configured")
        if not (recipients or kb.settings().digest_recipients):
            raise FormError("recipients", "none given and digest_recipients is empty")
        try:
            built = await run_in_threadpool(kb.send_digest, first, recipients or None)
        except digests.DigestError as exc:  # the mail server refused or could not be reached
            raise HTTPException(502, str(exc)) from None
        to = ", ".join(recipients or kb.settings().digest_recipients)
        message = f"Sent “{built.subject}” to {to}."
        return web.render(request, "knowledge/_flash.html", viewer, message=message)

    return r
