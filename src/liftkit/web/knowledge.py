"""The knowledge base in the dashboard: search, briefs, ideas, calendar, leaderboard, digest.

One ``KnowledgeBase`` facade serves every page (the object ``/api/v1/kb`` uses), and the pages
are split by what they are about: ``kb_pages`` (search and learnings), ``brief_pages`` (a
brief, its lifecycle and the new-brief form) and ``planning_pages`` (ideas, calendar,
leaderboard, digest).
"""

from fastapi import APIRouter

from liftkit.knowledge.base import KnowledgeBase
from liftkit.web import brief_pages, kb_pages, planning_pages
from liftkit.web._core import Web


def router(web: Web, route_class: type) -> APIRouter:
    r = APIRouter(route_class=route_class, include_in_schema=False)
    kb = KnowledgeBase(web.platform)
    for module in (kb_pages, brief_pages, planning_pages):
        r.include_router(module.router(web, route_class, kb))
    return r
