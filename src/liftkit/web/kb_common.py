"""What the knowledge-base pages share: who may read which record, badges, highlighted snippets.

The pages call the same ``KnowledgeBase`` facade as ``/api/v1/kb`` (one instance per app, made
in ``knowledge.router``), so the dashboard can never disagree with the API about a search, a
checklist or a score. These helpers only adapt its output for people.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, TypeVar

from fastapi import HTTPException, Request, Response
from markupsafe import Markup, escape

from liftkit.knowledge.lifecycle import LifecycleError
from liftkit.knowledge.records import Record
from liftkit.web._core import FormError, Viewer, Web

T = TypeVar("T")

OUTCOME_TONE = {"won": "good", "lost": "bad", "inconclusive": "", "dnf": "warn"}
OUTCOME_LABEL = {
    "won": "won",
    "lost": "lost",
    "inconclusive": "inconclusive",
    "dnf": "did not finish",
}
STATUS_TONE = {"pass": "good", "fail": "bad", "warn": "warn", "skip": ""}
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


def readable(viewer: Viewer, items: list[T], project: Callable[[T], str]) -> list[T]:
    """Items of projects the viewer may read, narrowed to the switcher's project if one is set."""
    return [i for i in items if viewer.sees(project(i))]


def readable_records(viewer: Viewer, records: list[Record]) -> list[Record]:
    return readable(viewer, records, lambda r: r.brief.project)


def highlight(snippet: str) -> Markup:
    """A search snippet with its ``**matches**`` as ``<mark>``; everything else escaped."""
    text = str(escape(snippet))
    return Markup(_BOLD.sub(lambda m: f"<mark>{m.group(1)}</mark>", text))


def parse_day(field: str, value: str) -> date | None:
    """An ``<input type=date>`` value (empty: none); a malformed one names its field."""
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FormError(field, f"{value!r} is not a date (YYYY-MM-DD)") from None


def choice(field: str, value: str, allowed: tuple[str, ...] | frozenset[str]) -> str | None:
    value = value.strip()
    if not value:
        return None
    if value not in allowed:
        raise FormError(field, f"{value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def words(value: str) -> list[str]:
    """A comma- or newline-separated form field as a list, blanks dropped."""
    return [w.strip() for w in re.split(r"[,\n]", value) if w.strip()]


@contextmanager
def lifecycle_errors() -> Iterator[None]:
    """A refused move as the API reports it: 409 with the facade's reason."""
    try:
        yield
    except LifecycleError as exc:
        raise HTTPException(409, str(exc)) from None


def render(web: Web, request: Request, template: str, viewer: Viewer, **context: Any) -> Response:
    """``web.render`` with the badge tables every knowledge template uses."""
    return web.render(
        request, template, viewer, outcome_tone=OUTCOME_TONE, outcome_label=OUTCOME_LABEL,
        status_tone=STATUS_TONE, highlight=highlight, **context,
    )  # fmt: skip
