"""What the experiment pages share: reading an experiment for a viewer, writing it like the API.

Writes go through ``registry.save`` with the viewer as actor after the same role check as
``PUT /api/v1/experiments/{key}`` (``write_role`` on every project the change touches), so a
change made in the dashboard is a revision in the audit log like any other.
"""

from typing import Any

from liftkit.api.auth import write_role
from liftkit.api.objects import involved_projects, require_on
from liftkit.automation.state import State
from liftkit.automation.state import load as load_state
from liftkit.platform import Platform
from liftkit.registry import Registry, Revision, collection
from liftkit.registry.accounts import Role
from liftkit.registry.experiments import Experiment
from liftkit.registry.features import Feature
from liftkit.registry.playbooks import Playbook
from liftkit.web._core import Viewer

SPEC = collection("experiments")
WRITER: Role = write_role(SPEC)
STATUSES = ("draft", "running", "stopped", "archived")
OUTCOMES = {
    "won": "Won: a variation beat control",
    "lost": "Lost: no variation beat control, or one did harm",
    "inconclusive": "Inconclusive: no clear difference",
    "dnf": "Did not finish: stopped for a problem with the test itself",
}


def status_of(experiment: Experiment) -> str:
    """The list's grouping: archived experiments leave their status group."""
    return "archived" if experiment.archived else experiment.status


def load(registry: Registry, viewer: Viewer, key: str) -> Experiment:
    """The live experiment, if the viewer may read its project (else 404/403)."""
    found = registry.get("experiments", key)
    assert isinstance(found, Experiment)
    viewer.principal.require("viewer", found.project, f"reading experiment {key!r}")
    return found


def changed(experiment: Experiment, **changes: Any) -> Experiment:
    """A validated copy with ``changes`` (invalid combinations raise ValidationError)."""
    return Experiment.model_validate({**experiment.model_dump(), **changes})


def save(
    registry: Registry,
    viewer: Viewer,
    experiment: Experiment,
    message: str,
    *,
    before: Experiment | None = None,
) -> Revision:
    """Save like the REST API: the write role on every project involved (old and new)."""
    key = experiment.key
    projects = involved_projects(registry, SPEC, key, experiment, before)
    require_on(viewer.principal, SPEC, WRITER, projects, f"changing experiment {key!r}")
    return registry.save("experiments", experiment, viewer.actor, message=message)


def linked_features(registry: Registry, key: str) -> list[Feature]:
    """Features whose rules (in any environment) run this experiment."""
    return [f for f in registry.all("features") if key in f.experiments()]


def playbooks_of(platform: Platform, key: str) -> list[tuple[Playbook, State]]:
    """The playbooks driving experiment ``key``, with the controller's state of each."""
    found = [p for p in platform.registry.all("playbooks") if p.experiment_key == key]
    return [(p, load_state(platform.engine, p.key)) for p in found]
