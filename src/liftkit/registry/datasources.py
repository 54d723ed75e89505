"""Data sources and segments: where analysis SQL runs, and who it is about.

A data source is a warehouse connection plus what liftkit must know to analyse experiments in it:
the identifier types its fact tables use (``user_id``, ``anonymous_id``, …), join tables that map
one identifier type to another, and where exposures come from. The embedded event store is the
data source ``events`` and needs no registry object; saving one with that key overrides it.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator

from liftkit.registry._base import Key, Model, ProjectObject, RegistryObject

DataSourceType = Literal[
    "duckdb",
    "postgres",
    "clickhouse",
    "spark",
    "bigquery",
    "snowflake",
    "redshift",
    "trino",
    "databricks",
]
#: Every dialect liftkit renders SQL for, by sqlglot's name.
DIALECTS: tuple[str, ...] = get_args(DataSourceType)
#: The data source liftkit's own event store is, when the registry holds no object by that key.
BUILTIN = "events"

#: Which identifier type an experiment's hash attribute stands for, unless a data source says.
DEFAULT_ATTRIBUTE_IDENTIFIERS = {
    "id": "user_id",
    "user_id": "user_id",
    "userId": "user_id",
    "anonymous_id": "anonymous_id",
    "anonymousId": "anonymous_id",
    "deviceId": "anonymous_id",
}


class IdentifierJoin(Model):
    """A SELECT with one column per identifier type it maps, e.g. user_id ↔ anonymous_id."""

    sql: str = Field(min_length=1)
    identifiers: list[str] = Field(min_length=2, max_length=2)


class DataSource(RegistryObject):
    """A warehouse connection. ``url`` may name environment variables as ``${NAME}``.

    Variables are expanded when connecting, so passwords need not be stored in the registry.
    ``exposure_sql`` replaces liftkit's ``exposures`` table as the assignment source; it returns
    ``timestamp``, ``experiment_key``, ``variation_id`` and one column per identifier type it
    knows; any other column can be used as a dimension.
    """

    type: DataSourceType = "duckdb"
    url: str | None = None
    timeout_seconds: float = Field(300.0, gt=0)
    identifier_types: list[str] = Field(
        default_factory=lambda: ["user_id", "anonymous_id"], min_length=1
    )
    attribute_identifiers: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ATTRIBUTE_IDENTIFIERS)
    )
    identifier_joins: list[IdentifierJoin] = Field(default_factory=list)
    exposure_sql: str | None = None

    @model_validator(mode="after")
    def _known_identifiers(self) -> DataSource:
        known = set(self.identifier_types)
        for index, join in enumerate(self.identifier_joins):
            unknown = [i for i in join.identifiers if i not in known]
            if unknown:
                raise ValueError(
                    f"identifier_joins.{index}.identifiers: {unknown[0]!r} is not one of "
                    "identifier_types"
                )
        return self

    def identifier_for(self, hash_attribute: str) -> str:
        """The identifier type an experiment hashed on ``hash_attribute`` is analysed by."""
        if hash_attribute in self.identifier_types:
            return hash_attribute
        return self.attribute_identifiers.get(hash_attribute, self.identifier_types[0])


class Segment(ProjectObject):
    """A set of units (a SELECT of one identifier column) that an analysis can be limited to."""

    datasource: Key = BUILTIN
    identifier_type: str = "user_id"
    sql: str = Field(min_length=1)
