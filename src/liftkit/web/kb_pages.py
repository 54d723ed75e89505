"""The knowledge base's front page: full-text search with filters, and the latest learnings.

The search form is a plain GET form (it works without JavaScript and its URL can be shared);
with htmx, typing or changing a filter fetches only the results fragment. Results are the
facade's ``search`` — the same index, ranking and snippets as ``GET /api/v1/kb/search``.
"""

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, get_args
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from liftkit.knowledge.base import KnowledgeBase
from liftkit.knowledge.records import Record
from liftkit.knowledge.search import Filters, Hit
from liftkit.registry.briefs import STAGES, Outcome
from liftkit.web._core import Viewer, Web
from liftkit.web.kb_common import choice, parse_day, readable_records, render

PAGE_SIZE = 20
OUTCOMES: tuple[str, ...] = get_args(Outcome)
RECENT_LEARNINGS = 8


def _facets(records: list[Record]) -> dict[str, list[str]]:
    """The values the filter menus offer: what the readable briefs actually use."""
    tags, teams, metrics = set(), set(), set()
    for r in records:
        tags.update(r.brief.tags)
        metrics.update(r.metrics)
        if r.brief.team:
            teams.add(r.brief.team)
    return {"tags": sorted(tags), "teams": sorted(teams), "metrics": sorted(metrics)}


def recent_learnings(records: list[Record], limit: int = RECENT_LEARNINGS) -> list[Record]:
    """Concluded briefs with written learnings, newest decision first."""
    learned = [r for r in records if r.outcome and r.brief.conclusion.learnings.strip()]
    oldest = datetime.min.replace(tzinfo=UTC)

    def decided(r: Record) -> datetime:
        when = r.decided_at
        if when is None:
            return oldest
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    return sorted(learned, key=lambda r: (decided(r), r.key), reverse=True)[:limit]


def router(web: Web, route_class: type, kb: KnowledgeBase) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    Current = Annotated[Viewer, Depends(web.viewer)]  # noqa: N806 - a type alias

    def search(viewer: Viewer, q: str, filters: Filters, page: int) -> tuple[list[Hit], int]:
        """The facade's search, limited to what the viewer may read.

        With a role on every project (or a project chosen) it is exactly the API's call; a
        person with roles in some projects only gets the hits of those, counted after filtering.
        """
        offset = (page - 1) * PAGE_SIZE
        if viewer.can("viewer", filters.project):
            return kb.search(q, filters, limit=PAGE_SIZE, offset=offset)
        hits, _ = kb.search(q, filters, limit=200)
        mine = [h for h in hits if viewer.can("viewer", h.project)]
        return mine[offset : offset + PAGE_SIZE], len(mine)

    @r.get("/knowledge")
    def knowledge(
        request: Request,
        viewer: Current,
        q: Annotated[str, Query(max_length=500)] = "",
        outcome: str = "",
        tag: str = "",
        metric: str = "",
        team: str = "",
        stage: str = "",
        date_from: str = "",
        date_to: str = "",
        page: Annotated[int, Query(ge=1, le=1000)] = 1,
    ) -> Response:
        start, end = parse_day("date_from", date_from), parse_day("date_to", date_to)
        filters = Filters(
            project=viewer.project,
            tag=tag.strip() or None,
            outcome=choice("outcome", outcome, OUTCOMES),
            metric=metric.strip() or None,
            team=team.strip() or None,
            stage=choice("stage", stage, STAGES),
            date_from=datetime.combine(start, time(), tzinfo=UTC) if start else None,
            # The form's "to" day is inclusive; the facade's bound is exclusive.
            date_to=datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC) if end else None,
        )
        hits, total = search(viewer, q, filters, page)
        params = {
            "q": q, "outcome": outcome, "tag": tag, "metric": metric, "team": team,
            "stage": stage, "date_from": date_from, "date_to": date_to,
        }  # fmt: skip
        context: dict[str, Any] = {
            "q": q, "hits": hits, "total": total, "page": page, "pages": -(-total // PAGE_SIZE),
            "params": {k: v for k, v in params.items() if v},
        }  # fmt: skip
        if request.headers.get("HX-Target") == "kb-results":
            return render(web, request, "knowledge/_results.html", viewer, **context)
        records = readable_records(viewer, kb.records(viewer.project))
        return render(
            web, request, "knowledge/search.html", viewer, **context, form=params,
            facets=_facets(records), outcomes=OUTCOMES, stages=STAGES,
            learnings=recent_learnings(records), briefs=len(records),
        )  # fmt: skip

    @r.get("/kb/briefs/{key}")
    def digest_link(key: str, viewer: Current) -> Response:
        """The address digest mails link to (``digest.brief_url``): the brief's page."""
        return RedirectResponse(f"/knowledge/briefs/{quote(key, safe='')}", status_code=303)

    return r
