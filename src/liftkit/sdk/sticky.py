"""Sticky bucketing: keep a user's variation stable across weight or coverage changes.

A service stores one document per (attribute name, attribute value)::

    {"attributeName": "id", "attributeValue": "123",
     "assignments": {"<experiment key>__<bucket version>": "<variation key>"}}

Implement :class:`StickyBucketService` over Redis, a cookie or a database; the in-memory one
here suits tests and single-process apps.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


def doc_key(attribute_name: str, attribute_value: str) -> str:
    return f"{attribute_name}||{attribute_value}"


@runtime_checkable
class StickyBucketService(Protocol):
    """Where sticky bucket documents live."""

    def get_assignments(self, attribute_name: str, attribute_value: str) -> dict[str, Any] | None:
        """The document for one attribute value, or None."""
        ...

    def save_assignments(self, doc: dict[str, Any]) -> None:
        """Store (replace) one document."""
        ...


def load_docs(
    service: StickyBucketService, attributes: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Fetch the documents for several (name, value) pairs, keyed ``name||value``."""
    docs: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        doc = service.get_assignments(name, value)
        if doc is not None:
            docs[doc_key(name, value)] = doc
    return docs


class InMemoryStickyBucketService:
    """A thread-safe dictionary of documents."""

    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get_assignments(self, attribute_name: str, attribute_value: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self._docs.get(doc_key(attribute_name, attribute_value))
            return copy.deepcopy(doc) if doc is not None else None

    def save_assignments(self, doc: dict[str, Any]) -> None:
        key = doc_key(str(doc["attributeName"]), str(doc["attributeValue"]))
        with self._lock:
            self._docs[key] = copy.deepcopy(doc)

    def clear(self) -> None:
        with self._lock:
            self._docs.clear()
