"""Placeholder: filled in by its page module's author."""

from fastapi import APIRouter

from liftkit.web._core import Web


def router(web: Web, route_class: type) -> APIRouter:
    return APIRouter(route_class=route_class, include_in_schema=False)
