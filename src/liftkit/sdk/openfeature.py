"""An OpenFeature provider backed by a liftkit :class:`Client` (needs ``liftkit[openfeature]``).

::

    from openfeature import api
    from liftkit.sdk.openfeature import LiftkitProvider

    api.set_provider(LiftkitProvider(client))
    flags = api.get_client()
    flags.get_boolean_value("new-checkout", False, EvaluationContext("user-123", {"plan": "pro"}))

The evaluation context's targeting key becomes the ``id`` attribute; its other attributes are
passed as they are (``datetime`` values as ISO-8601 strings). Reasons: an experiment gives
``SPLIT`` (with the variation key as the variant), a force rule ``TARGETING_MATCH``, the
feature's default value ``DEFAULT``, the client's configured ``defaults`` (served while no
payload is loaded or it is too stale) ``STALE``. Errors: an unknown feature is
``FLAG_NOT_FOUND``, a value of another type ``TYPE_MISMATCH``, and an unknown feature before
any payload has loaded ``PROVIDER_NOT_READY``. A null value resolves to the caller's default
with reason ``DEFAULT``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.event import ProviderEventDetails
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
    from openfeature.provider import AbstractProvider, Metadata
except ImportError as exc:  # pragma: no cover - exercised with the package hidden
    raise ImportError(
        "liftkit.sdk.openfeature needs the OpenFeature SDK: pip install 'liftkit[openfeature]'"
    ) from exc

from liftkit.sdk._types import EvalResult
from liftkit.sdk.client import Client

T = TypeVar("T")

_REASONS: Mapping[str, str] = {
    "experiment": Reason.SPLIT,
    "force": Reason.TARGETING_MATCH,
    "override": Reason.STATIC,
    "defaultValue": Reason.DEFAULT,
    "prerequisite": Reason.TARGETING_MATCH,
}


class LiftkitProvider(AbstractProvider):
    """Resolves OpenFeature flags with a liftkit client; the client stays the caller's to close."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        client.add_update_listener(self._payload_changed)

    def get_metadata(self) -> Metadata:
        return Metadata(name="liftkit")

    def _payload_changed(self) -> None:
        self.emit_provider_configuration_changed(ProviderEventDetails(message="payload updated"))

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, _as_bool)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, _as_str)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, _as_int)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, _as_float)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, evaluation_context, _as_object)

    def _resolve(
        self,
        flag_key: str,
        default_value: T,
        evaluation_context: EvaluationContext | None,
        convert: Callable[[Any], tuple[bool, T]],
    ) -> FlagResolutionDetails[T]:
        ctx = self.client.for_user(_attributes(evaluation_context))
        result = ctx.evaluate(flag_key)
        if ctx.serving_defaults and not self.client.ready and result.source == "unknownFeature":
            return _error(default_value, ErrorCode.PROVIDER_NOT_READY, "no payload loaded yet")
        if result.source == "unknownFeature":
            return _error(default_value, ErrorCode.FLAG_NOT_FOUND, f"unknown flag {flag_key!r}")
        if result.source == "cyclicPrerequisite":
            return _error(default_value, ErrorCode.GENERAL, "cyclic prerequisites")
        if result.value is None:
            return FlagResolutionDetails(
                value=default_value, reason=Reason.DEFAULT, flag_metadata=_metadata(result)
            )
        ok, value = convert(result.value)
        if not ok:
            return _error(
                default_value,
                ErrorCode.TYPE_MISMATCH,
                f"flag {flag_key!r} is a {type(result.value).__name__}",
            )
        reason = Reason.STALE if ctx.serving_defaults else _REASONS.get(result.source, "UNKNOWN")
        variant = None
        exp_result = result.experiment_result
        if exp_result is not None and exp_result.in_experiment:
            variant = exp_result.key
        return FlagResolutionDetails(
            value=value, reason=reason, variant=variant, flag_metadata=_metadata(result)
        )


def _as_bool(value: Any) -> tuple[bool, bool]:
    return (True, value) if isinstance(value, bool) else (False, False)


def _as_str(value: Any) -> tuple[bool, str]:
    return (True, value) if isinstance(value, str) else (False, "")


def _as_int(value: Any) -> tuple[bool, int]:
    if isinstance(value, bool):
        return False, 0
    if isinstance(value, int):
        return True, value
    if isinstance(value, float) and value.is_integer():  # JSON has one number type
        return True, int(value)
    return False, 0


def _as_float(value: Any) -> tuple[bool, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True, float(value)
    return False, 0.0


def _as_object(
    value: Any,
) -> tuple[bool, Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
    return (True, value) if isinstance(value, (dict, list)) else (False, {})


def _attributes(context: EvaluationContext | None) -> dict[str, Any]:
    if context is None:
        return {}
    attributes = {k: _plain(v) for k, v in context.attributes.items()}
    if context.targeting_key:
        attributes["id"] = context.targeting_key
    return attributes


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _metadata(result: EvalResult) -> dict[str, bool | int | float | str]:
    meta: dict[str, bool | int | float | str] = {"source": result.source}
    if result.rule_id:
        meta["ruleId"] = result.rule_id
    if result.experiment_key:
        meta["experimentKey"] = result.experiment_key
    if result.variation_id is not None:
        meta["variationId"] = result.variation_id
    return meta


def _error(default: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default, reason=Reason.ERROR, error_code=code, error_message=message
    )
