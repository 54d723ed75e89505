"""liftkit.automation: the playbook controller.

Playbooks (``liftkit.registry.playbooks``) say how a change goes live; the controller measures,
decides with an ordered list of small rules (``rules``), acts through the registry
(``actions``), remembers where each playbook is and why (``state``), tells people (``notify``)
and makes sure only one process does so (``lock``). docs/playbooks.md is the user's guide.
"""

from liftkit.automation.actions import stop_experiment
from liftkit.automation.controller import ACTOR_PREFIX, COMMANDS, Controller, OverrideError
from liftkit.automation.rules import RULES, Decision, Situation, decide
from liftkit.automation.state import State

__all__ = [
    "ACTOR_PREFIX",
    "COMMANDS",
    "RULES",
    "Controller",
    "Decision",
    "OverrideError",
    "Situation",
    "State",
    "decide",
    "stop_experiment",
]
