"""The registry's collections, as one declarative table.

This table drives storage (which columns are indexed for filtering), the REST API (one set of
routes per collection), config-as-code (the ``kind`` of a YAML document) and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from liftkit.registry._base import ProjectObject, RegistryObject
from liftkit.registry.briefs import Brief, BriefTemplate, KnowledgeSettings
from liftkit.registry.datasources import DataSource, Segment
from liftkit.registry.experiments import Experiment
from liftkit.registry.features import Feature
from liftkit.registry.metrics import FactTable, Metric
from liftkit.registry.playbooks import Playbook
from liftkit.registry.targeting import (
    Attribute,
    Environment,
    Holdout,
    Namespace,
    Project,
    SavedGroup,
)


@dataclass(frozen=True)
class Collection:
    """One kind of registry object.

    ``status_field`` names the model field stored in the indexed ``status`` column, so lists can
    be filtered by it (a feature's flag kind, an experiment's status, a metric's type).
    ``in_payload`` marks collections whose changes alter SDK payloads (they are recompiled on
    publish, and they need approval where an environment requires it).
    """

    name: str
    kind: str
    model: type[RegistryObject]
    status_field: str | None = None
    in_payload: bool = False

    @property
    def project_scoped(self) -> bool:
        return issubclass(self.model, ProjectObject)


COLLECTIONS: dict[str, Collection] = {
    c.name: c
    for c in (
        Collection("projects", "Project", Project),
        Collection("environments", "Environment", Environment),
        Collection("attributes", "Attribute", Attribute, status_field="datatype", in_payload=True),
        Collection("saved-groups", "SavedGroup", SavedGroup, status_field="type", in_payload=True),
        Collection("namespaces", "Namespace", Namespace),
        Collection("features", "Feature", Feature, status_field="kind", in_payload=True),
        Collection("experiments", "Experiment", Experiment, status_field="status", in_payload=True),
        Collection("holdouts", "Holdout", Holdout, status_field="status", in_payload=True),
        Collection("data-sources", "DataSource", DataSource, status_field="type"),
        Collection("segments", "Segment", Segment, status_field="datasource"),
        Collection("fact-tables", "FactTable", FactTable, status_field="datasource"),
        Collection("metrics", "Metric", Metric, status_field="type"),
        Collection("playbooks", "Playbook", Playbook, status_field="type"),
        Collection("briefs", "Brief", Brief, status_field="stage"),
        Collection("brief-templates", "BriefTemplate", BriefTemplate),
        Collection("knowledge-settings", "KnowledgeSettings", KnowledgeSettings),
    )
}
BY_KIND: dict[str, Collection] = {c.kind: c for c in COLLECTIONS.values()}


def collection(name: str) -> Collection:
    """Look a collection up by its URL name (``features``) or its kind (``Feature``)."""
    found = COLLECTIONS.get(name) or BY_KIND.get(name)
    if found is None:
        known = ", ".join(COLLECTIONS)
        raise KeyError(f"unknown collection {name!r} (known: {known})")
    return found
