"""Shared building blocks of the registry's pydantic models.

Every registry object is a pydantic model with a ``key``; the API, the YAML files of
config-as-code and the stored JSON bodies all use these models, so each shape is declared once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Keys appear in URLs, payloads and source code: lowercase-friendly, no spaces or slashes.
Key = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"),
]
#: A JSON-serialisable value (flag values, variation payloads).
JsonValue = Any
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
#: A GrowthBook/MongoDB-style targeting condition, e.g. ``{"country": {"$in": ["GB", "US"]}}``.
Condition = dict[str, Any]


class Model(BaseModel):
    """Strict about unknown fields, so a typo in YAML or JSON is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class RegistryObject(Model):
    """What every stored object has: a key unique within its collection."""

    key: Key
    name: str = ""
    description: str = ""


class ProjectObject(RegistryObject):
    """Objects that belong to one project (features, experiments, metrics, ...)."""

    project: Key = "default"
    owner: str = ""
    tags: list[str] = Field(default_factory=list)


class Schedule(Model):
    """A window in which a rule is live; outside it the rule is left out of the payload."""

    start_at: datetime | None = None
    end_at: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        return (self.start_at is None or self.start_at <= now) and (
            self.end_at is None or now < self.end_at
        )


class SavedGroupTarget(Model):
    """A rule's reference to saved groups: the user must be in all / any / none of them."""

    match: str = Field("all", pattern="^(all|any|none)$")
    ids: list[Key] = Field(min_length=1)


class Prerequisite(Model):
    """Another feature whose value must satisfy ``condition`` (e.g. ``{"value": true}``).

    By default a failing prerequisite skips only the rule, as GrowthBook's rule-level
    prerequisites do; with ``gate`` it turns the whole feature off (SDKs return null), as
    GrowthBook's feature-level prerequisites do.
    """

    feature: Key
    condition: Condition = Field(default_factory=lambda: {"value": True})
    gate: bool = False


class Targeting(Model):
    """Who a rule or an experiment applies to."""

    condition: Condition = Field(default_factory=dict)
    saved_groups: list[SavedGroupTarget] = Field(default_factory=list)
    prerequisites: list[Prerequisite] = Field(default_factory=list)
