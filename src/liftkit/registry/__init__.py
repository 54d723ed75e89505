"""The registry: liftkit's domain objects, their revisions and audit log, and payload compiling.

Public API: ``Registry`` (objects and revisions), ``Accounts`` (users, sessions, keys), the
models (``Feature``, ``Experiment``, ...), ``COLLECTIONS`` and the errors in
``liftkit.registry.errors``.
"""

from liftkit.registry.accounts import Accounts, ApiKey, Role, User
from liftkit.registry.collections import COLLECTIONS, Collection, collection
from liftkit.registry.experiments import Experiment, Phase, Variation
from liftkit.registry.features import (
    ExperimentRule,
    Feature,
    FeatureEnvironment,
    ForceRule,
    RolloutRule,
)
from liftkit.registry.metrics import FactTable, Metric
from liftkit.registry.revisions import AuditEntry, DiffEntry, Revision
from liftkit.registry.store import Page, Published, Registry
from liftkit.registry.targeting import (
    Attribute,
    Environment,
    Holdout,
    Namespace,
    Project,
    SavedGroup,
)

__all__ = [
    "COLLECTIONS",
    "Accounts",
    "ApiKey",
    "Attribute",
    "AuditEntry",
    "Collection",
    "DiffEntry",
    "Environment",
    "Experiment",
    "ExperimentRule",
    "FactTable",
    "Feature",
    "FeatureEnvironment",
    "ForceRule",
    "Holdout",
    "Metric",
    "Namespace",
    "Page",
    "Phase",
    "Project",
    "Published",
    "Registry",
    "Revision",
    "Role",
    "RolloutRule",
    "SavedGroup",
    "User",
    "Variation",
    "collection",
]
