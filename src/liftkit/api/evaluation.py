"""Server-side evaluation: GrowthBook remote evaluation and OpenFeature OFREP, as pure functions.

Both evaluate with the connection's compiled engine (``Payload.engine``), built once per
compile, so a request costs only the evaluation itself. The HTTP layer (``delivery``) parses
nothing but bytes; everything about request validation and response shape lives here, where it
can be tested without a server.

Remote evaluation answers in the shape GrowthBook's proxy does: a payload whose features are
reduced to their value for this user (``defaultValue``), plus, where the user was bucketed into
experiments, one force rule carrying ``tracks`` (the experiment, with the other variations
scrubbed, and the result) so the SDK can still report exposures. Rules, conditions and saved
groups never leave the server.

OFREP (https://openfeature.dev, protocol 0.3) maps liftkit results to OpenFeature reasons:
an experiment is ``SPLIT`` (variant = variation key), a force rule is ``SPLIT`` when it is a
percentage rollout, ``TARGETING_MATCH`` when it has a condition, else ``STATIC`` (variant =
rule id); a default value is ``STATIC`` for a flag without rules, else ``DEFAULT`` (variant
``default``). A null value is returned without ``value`` (OFREP's "code default": the
provider uses the application's default).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from liftkit.api._http import dumps
from liftkit.api.payloads import Payload
from liftkit.sdk._types import EvalResult, ExperimentResult, UserContext


class BadRequest(ValueError):
    """A request body the server cannot use; the message names the field."""


def parse_json(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body: not valid JSON") from None


# -- GrowthBook remote evaluation -------------------------------------------------------------


def remote_eval_user(body: Any) -> UserContext:
    """The user a remote-eval request describes: ``{attributes, forcedVariations,
    forcedFeatures, url}`` (forcedFeatures as ``[[key, value], ...]``, as GrowthBook's SDKs send
    it, or as an object)."""
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    attributes = body.get("attributes")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        raise BadRequest("attributes: must be an object")
    forced_variations = body.get("forcedVariations")
    if forced_variations is None:
        forced_variations = {}
    if not isinstance(forced_variations, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in forced_variations.values()
    ):
        raise BadRequest(
            "forcedVariations: must be an object of experiment keys to variation indexes"
        )
    forced = body.get("forcedFeatures")
    forced_features: dict[str, Any]
    if forced is None:
        forced_features = {}
    elif isinstance(forced, dict):
        forced_features = forced
    elif isinstance(forced, list) and all(
        isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in forced
    ):
        forced_features = {pair[0]: pair[1] for pair in forced}
    else:
        raise BadRequest("forcedFeatures: must be a list of [featureKey, value] pairs")
    url = body.get("url")
    if url is None:
        url = ""
    if not isinstance(url, str):
        raise BadRequest("url: must be a string")
    return UserContext(
        attributes=attributes,
        url=url,
        forced_variations=forced_variations,
        forced_features=forced_features,
    )


def _scrubbed(experiment: Mapping[str, Any], variation: int) -> dict[str, Any]:
    """The experiment as the client may see it: only its own variation, no targeting."""
    out = {k: v for k, v in experiment.items() if k != "condition"}
    variations = experiment.get("variations")
    if isinstance(variations, list | tuple):
        out["variations"] = [v if i == variation else {} for i, v in enumerate(variations)]
    return out


def remote_evaluate(payload: Payload, user: UserContext) -> dict[str, Any]:
    """Every feature of the connection evaluated for ``user``, in GrowthBook's response shape."""
    engine = payload.engine
    exposures: list[tuple[Mapping[str, Any], ExperimentResult]] = []

    def collect(experiment: Mapping[str, Any], result: ExperimentResult) -> None:
        exposures.append((experiment, result))

    user.on_exposure = collect
    features: dict[str, Any] = {}
    for key in engine.features:
        exposures.clear()
        result = engine.evaluate(key, user)
        definition: dict[str, Any] = {"defaultValue": result.value}
        if exposures:
            tracks = [
                {"experiment": _scrubbed(exp, res.variation_id), "result": res.to_dict()}
                for exp, res in exposures
            ]
            definition["rules"] = [{"force": result.value, "tracks": tracks}]
        features[key] = definition
    user.on_exposure = None
    experiments = [
        _scrubbed(exp, res.variation_id)
        for exp, res in engine.run_auto_experiments(user)
        if res.in_experiment
    ]
    out: dict[str, Any] = {"status": 200, "features": features, "experiments": experiments}
    if "dateUpdated" in payload.data:
        out["dateUpdated"] = payload.data["dateUpdated"]
    return out


# -- OpenFeature OFREP ------------------------------------------------------------------------


class OfrepError(Exception):
    """An OFREP error response: HTTP status, OpenFeature error code and details."""

    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.code = code
        self.details = details


def ofrep_user(body: bytes) -> UserContext:
    """The evaluation context of an OFREP request; ``targetingKey`` becomes the ``id``."""
    try:
        parsed = parse_json(body)
    except BadRequest as exc:
        raise OfrepError(400, "PARSE_ERROR", str(exc)) from None
    if not isinstance(parsed, dict):
        raise OfrepError(400, "PARSE_ERROR", "body: must be a JSON object")
    context = parsed.get("context")
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise OfrepError(400, "INVALID_CONTEXT", "context: must be an object")
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    if "targetingKey" in context:
        targeting_key = context["targetingKey"]
        if not isinstance(targeting_key, str):
            raise OfrepError(400, "INVALID_CONTEXT", "context.targetingKey: must be a string")
        attributes["id"] = targeting_key
    return UserContext(attributes=attributes)


def _rule(payload: Payload, key: str, rule_id: str) -> Mapping[str, Any]:
    definition = payload.data.get("features", {}).get(key) or {}
    for rule in definition.get("rules") or ():
        if isinstance(rule, dict) and rule.get("id") == rule_id:
            return rule
    return {}


def _reason(payload: Payload, result: EvalResult) -> str:
    source = result.source
    if source == "experiment":
        return "SPLIT"
    if source == "force":
        rule = _rule(payload, result.key, result.rule_id)
        if "coverage" in rule or "range" in rule:
            return "SPLIT"
        if rule.get("condition") or rule.get("parentConditions") or rule.get("filters"):
            return "TARGETING_MATCH"
        return "STATIC"
    if source == "defaultValue":
        definition = payload.data.get("features", {}).get(result.key) or {}
        return "DEFAULT" if definition.get("rules") else "STATIC"
    if source == "prerequisite":
        return "TARGETING_MATCH"
    return "UNKNOWN"


def _variant(result: EvalResult) -> str:
    """The variation key in an experiment, else the rule that decided, else ``default``.

    Always present: the spec makes it optional, but deployed providers (Python's, for one)
    read it unconditionally.
    """
    experiment = result.experiment_result
    if experiment is not None and experiment.in_experiment:
        return str(experiment.key)
    if result.source == "force" and result.rule_id:
        return result.rule_id
    return "default"


def ofrep_flag(payload: Payload, key: str, result: EvalResult) -> dict[str, Any]:
    """One OFREP evaluation (success or failure object) for an evaluated flag."""
    if result.source == "unknownFeature":
        return {"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": f"no flag {key!r}"}
    if result.source == "cyclicPrerequisite":
        return {"key": key, "errorCode": "GENERAL", "errorDetails": "cyclic prerequisites"}
    out: dict[str, Any] = {"key": key}
    if result.value is None:
        out["reason"] = "DEFAULT"  # no value: the provider uses the code default
    else:
        out["value"] = result.value
        out["reason"] = _reason(payload, result)
    out["variant"] = _variant(result)
    metadata: dict[str, Any] = {"source": result.source}
    if result.rule_id:
        metadata["ruleId"] = result.rule_id
    if result.experiment_key:
        metadata["experimentKey"] = result.experiment_key
    if result.variation_id is not None:
        metadata["variationId"] = result.variation_id
    out["metadata"] = metadata
    return out


def ofrep_single(payload: Payload, key: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """``POST /ofrep/v1/evaluate/flags/{key}``: (status, response object)."""
    try:
        user = ofrep_user(body)
    except OfrepError as exc:
        return exc.status, {"key": key, "errorCode": exc.code, "errorDetails": exc.details}
    flag = ofrep_flag(payload, key, payload.engine.evaluate(key, user))
    code = flag.get("errorCode")
    if code == "FLAG_NOT_FOUND":
        return 404, flag
    if code is not None:
        return 400, flag
    return 200, flag


def ofrep_bulk(payload: Payload, body: bytes) -> tuple[int, bytes, str | None]:
    """``POST /ofrep/v1/evaluate/flags``: (status, body bytes, ETag of the body or None).

    The ETag hashes the response itself, so it changes when either the flags or the context
    do; a provider that sends it back with an unchanged context gets a 304.
    """
    try:
        user = ofrep_user(body)
    except OfrepError as exc:
        return exc.status, dumps({"errorCode": exc.code, "errorDetails": exc.details}), None
    engine = payload.engine
    flags = [ofrep_flag(payload, key, engine.evaluate(key, user)) for key in engine.features]
    out = dumps({"flags": flags})
    return 200, out, '"' + hashlib.sha256(out).hexdigest()[:32] + '"'


def ofrep_configuration() -> dict[str, Any]:
    """``GET /ofrep/v1/configuration``: what providers may assume about this server."""
    return {
        "name": "liftkit",
        "capabilities": {
            "cacheInvalidation": {"polling": {"enabled": True, "minPollingIntervalMs": 1000}},
            "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]},
        },
    }
