"""One user's view of the flags for one request: what ``Client.for_user`` returns.

A context holds a reference to the payload current when it was made (or None while the client
serves its configured defaults), so all reads in a request agree; results are memoised per key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from liftkit.sdk._engine import CompiledPayload, Redirect
from liftkit.sdk._types import EvalResult, ExperimentResult, UserContext

log = logging.getLogger("liftkit.sdk")


class _Host(Protocol):
    """What a context needs from its client."""

    @property
    def defaults(self) -> Mapping[str, Any]: ...

    def default_result(self, key: str) -> EvalResult: ...

    def _report_exposure(
        self,
        experiment: Mapping[str, Any],
        result: ExperimentResult,
        attributes: Mapping[str, Any],
    ) -> None: ...


class EvalContext:
    """One user's view of the flags, for one request. Not thread-safe; create one per request.

    Results are memoised per key, so asking for the same flag twice in a request is free and
    always consistent. Each (user, experiment, variation) exposure is reported at most once
    per context; the built-in logger also deduplicates across contexts.
    """

    __slots__ = ("_cache", "_client", "_payload", "_seen", "serving_defaults", "user")

    def __init__(
        self,
        client: _Host,
        payload: CompiledPayload | None,
        user: UserContext,
        serving_defaults: bool,
    ) -> None:
        self._client = client
        self._payload = payload
        self.user = user
        """The engine's view of this user (attributes, url, forced variations …)."""
        self.serving_defaults = serving_defaults
        """True when this context serves the client's ``defaults`` (no payload, or too stale)."""
        self._cache: dict[str, EvalResult] = {}
        self._seen: set[tuple[str, str, str, int]] | None = None

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self.user.attributes

    def evaluate(self, key: str) -> EvalResult:
        """The full result: value, source, rule id, experiment and variation."""
        result = self._cache.get(key)
        if result is None:
            result = self._cache[key] = self._evaluate(key)
        return result

    def is_on(self, key: str) -> bool:
        return self.evaluate(key).on

    def is_off(self, key: str) -> bool:
        return self.evaluate(key).off

    def get(self, key: str, default: Any = None) -> Any:
        """The feature's value, or ``default`` when the feature is unknown or its value is null."""
        result = self.evaluate(key)
        if result.source == "unknownFeature" or result.value is None:
            return default
        return result.value

    def evaluate_all(self) -> dict[str, EvalResult]:
        """Every feature in the payload (or every key of ``defaults`` when serving them)."""
        payload = self._payload
        if payload is None:
            keys: list[str] = list(self._client.defaults)
        else:
            try:
                fresh = payload.evaluate_all(self.user)
            except Exception:
                log.exception("liftkit: evaluating all features failed; serving defaults")
                fresh = {}
            for key, result in fresh.items():
                self._cache.setdefault(key, result)
            keys = list(payload.features)
        return {key: self.evaluate(key) for key in keys}

    def redirect(self) -> Redirect | None:
        """The URL-redirect experiment that sends this request (``url=``) elsewhere, if any."""
        payload = self._payload
        if payload is None:
            return None
        try:
            return payload.redirect(self.user)
        except Exception:
            log.exception("liftkit: evaluating redirect experiments failed")
            return None

    def auto_experiments(self) -> list[tuple[Mapping[str, Any], ExperimentResult]]:
        """Run the payload's URL-targeted experiments (not attached to a feature) for this URL."""
        payload = self._payload
        if payload is None:
            return []
        try:
            return payload.run_auto_experiments(self.user)
        except Exception:
            log.exception("liftkit: evaluating URL-targeted experiments failed")
            return []

    def _evaluate(self, key: str) -> EvalResult:
        payload = self._payload
        if payload is not None:
            try:
                return payload.evaluate(key, self.user)
            except Exception:
                log.exception("liftkit: evaluating %r failed; serving its default", key)
        return self._client.default_result(key)

    def _on_exposure(self, experiment: Mapping[str, Any], result: ExperimentResult) -> None:
        seen = self._seen
        if seen is None:
            seen = self._seen = set()
        mark = (
            result.hash_attribute,
            str(result.hash_value),
            str(experiment.get("key") or ""),
            result.variation_id,
        )
        if mark in seen:
            return
        seen.add(mark)
        self._client._report_exposure(experiment, result, self.user.attributes)
