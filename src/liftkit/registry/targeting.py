"""The organisation's structure and shared targeting objects.

Projects, environments, attributes, saved groups, namespaces and holdouts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from liftkit.registry._base import Condition, Fraction, Key, ProjectObject, RegistryObject


class Project(RegistryObject):
    """A product area; roles, SDK connections and most objects are per project."""


class Environment(RegistryObject):
    """Where flags are served (dev, staging, production, ...).

    With ``requires_approval``, a change that reaches this environment is published only after
    someone other than its author approves it.
    """

    requires_approval: bool = False


AttributeType = Literal[
    "boolean",
    "number",
    "string",
    "enum",
    "secureString",
    "number[]",
    "string[]",
    "secureString[]",
]


class Attribute(RegistryObject):
    """A user attribute that targeting may use.

    ``secureString`` attributes are never sent in clear: condition values are published as
    SHA-256 hashes (salted with the organisation's salt), and applications pass the hashed value
    of the attribute to the SDK.
    """

    datatype: AttributeType = "string"
    enum: list[str] = Field(default_factory=list)
    #: Usable as an experiment's assignment (hash) attribute.
    hash_attribute: bool = False
    archived: bool = False


class SavedGroup(ProjectObject):
    """A reusable audience: a condition, or a list of attribute values (e.g. user ids)."""

    type: Literal["condition", "list"] = "condition"
    condition: Condition = Field(default_factory=dict)
    attribute: str | None = None
    values: list[str | int | float] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shape(self) -> SavedGroup:
        if self.type == "list" and not self.attribute:
            raise ValueError("attribute: a list group needs the attribute its values belong to")
        if self.type == "condition" and self.values:
            raise ValueError("values: only list groups have values")
        return self


class Namespace(RegistryObject):
    """Mutually exclusive experiments take non-overlapping ranges of one namespace."""


class Holdout(ProjectObject):
    """A share of users kept out of every experiment of a project, to measure their sum."""

    hash_attribute: str = "id"
    share: Fraction = 0.05
    status: Literal["running", "stopped"] = "running"
    #: Experiments it applies to; empty means every experiment of the project.
    experiments: list[Key] = Field(default_factory=list)
