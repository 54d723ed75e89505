"""Features (typed flags) and their per-environment rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from liftkit.registry._base import (
    Fraction,
    JsonValue,
    Key,
    Model,
    ProjectObject,
    Schedule,
    Targeting,
)

ValueType = Literal["boolean", "string", "number", "json"]
FlagKind = Literal["release", "experiment", "operational", "permission", "kill-switch"]


class _RuleBase(Targeting):
    #: Stable identity of the rule (it appears in evaluation results and the audit log). Left
    #: out, it is derived from the environment and position, so applying a file is idempotent.
    id: str | None = Field(None, min_length=1, max_length=100)
    description: str = ""
    enabled: bool = True
    schedule: Schedule | None = None


class ForceRule(_RuleBase):
    """Everyone matching the targeting gets ``value``."""

    type: Literal["force"] = "force"
    value: JsonValue


class RolloutRule(_RuleBase):
    """A share (``coverage``) of the matching users, chosen by hashing, gets ``value``."""

    type: Literal["rollout"] = "rollout"
    value: JsonValue
    coverage: Fraction = 1.0
    hash_attribute: str = "id"
    seed: str | None = None
    #: GrowthBook's own rollouts hash with version 1; imported ones keep it so nobody moves.
    hash_version: Literal[1, 2] = 2


class ExperimentRule(_RuleBase):
    """Matching users enter an experiment; each variation serves one value.

    ``values`` (one per variation) may be left out when the experiment's variations carry their
    own payloads.
    """

    type: Literal["experiment"] = "experiment"
    experiment: Key
    values: list[JsonValue] | None = None


Rule = Annotated[ForceRule | RolloutRule | ExperimentRule, Field(discriminator="type")]


class FeatureEnvironment(Model):
    """A feature in one environment: on or off, and its rules in priority order."""

    enabled: bool = False
    rules: list[Rule] = Field(default_factory=list)


def value_matches(value_type: ValueType, value: Any) -> bool:
    """Whether ``value`` fits the declared type (JSON flags take any JSON value)."""
    if value_type == "boolean":
        return isinstance(value, bool)
    if value_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if value_type == "string":
        return isinstance(value, str)
    return True


class Feature(ProjectObject):
    """A typed flag. ``kind`` records why it exists, which drives staleness and cleanup."""

    value_type: ValueType = "boolean"
    kind: FlagKind = "release"
    default_value: JsonValue = False
    environments: dict[Key, FeatureEnvironment] = Field(default_factory=dict)
    archived: bool = False

    @model_validator(mode="after")
    def _values_have_the_declared_type(self) -> Feature:
        if not value_matches(self.value_type, self.default_value):
            raise ValueError(f"default_value: must be a {self.value_type}")
        for env, setting in self.environments.items():
            for index, rule in enumerate(setting.rules):
                if rule.id is None:
                    rule.id = f"{env}-{index + 1}"
                values = [rule.value] if isinstance(rule, ForceRule | RolloutRule) else []
                if isinstance(rule, ExperimentRule) and rule.values is not None:
                    values = rule.values
                for value in values:
                    if not value_matches(self.value_type, value):
                        raise ValueError(
                            f"environments.{env}.rules.{index}: value {value!r} "
                            f"is not a {self.value_type}"
                        )
            ids = [rule.id for rule in setting.rules]
            if len(ids) != len(set(ids)):
                raise ValueError(f"environments.{env}.rules: rule ids must be unique")
        return self

    def experiments(self) -> set[str]:
        """Keys of the experiments this feature's rules refer to, in any environment."""
        return {
            rule.experiment
            for setting in self.environments.values()
            for rule in setting.rules
            if isinstance(rule, ExperimentRule)
        }
