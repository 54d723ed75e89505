"""The object users create: holds the current payload, keeps it fresh, hands out contexts.

``Client`` is built once per process; ``Client.for_user`` is called per request and returns an
:class:`EvalContext`, which is cheap (no copying, no network) because it only snapshots the
reference to the current :class:`CompiledPayload`. The payload reference is swapped atomically
by the background refresher, so readers never lock.

Evaluation never raises. With no payload (never loaded), or with a payload older than
``max_staleness``, contexts serve the ``defaults`` the user configured; see ``docs/sdk.md``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from liftkit.sdk import _lifecycle, sticky
from liftkit.sdk._engine import CompiledPayload
from liftkit.sdk._jsvalues import to_string, truthy
from liftkit.sdk._remote import RemoteSource
from liftkit.sdk._transport import Transport, UrllibTransport
from liftkit.sdk._types import EvalResult, ExperimentResult, ExposureCallback, UserContext
from liftkit.sdk.context import EvalContext
from liftkit.sdk.errors import PayloadError
from liftkit.sdk.exposures import ExposureLogger, ExposureStats

log = logging.getLogger("liftkit.sdk")

PayloadSource = Mapping[str, Any] | str | os.PathLike[str] | CompiledPayload

__all__ = ["Client", "EvalContext", "PayloadSource"]


class Client:
    """Feature flags and experiments for one SDK client key (or one local payload)."""

    def __init__(
        self,
        payload: PayloadSource | None = None,
        *,
        api_host: str | None = None,
        client_key: str | None = None,
        decryption_key: str | None = None,
        ttl: float = 60.0,
        max_staleness: float | None = None,
        defaults: Mapping[str, Any] | None = None,
        on_stale: Callable[[float], None] | None = None,
        on_update: Callable[[], None] | None = None,
        streaming: bool = True,
        init_timeout: float = 5.0,
        on_exposure: ExposureCallback | None = None,
        ingest_key: str | None = None,
        events_endpoint: str | None = None,
        exposure_logger: ExposureLogger | None = None,
        sticky_bucket_service: sticky.StickyBucketService | None = None,
        transport: Transport | None = None,
        request_timeout: float = 10.0,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 60.0,
    ) -> None:
        if api_host is not None and not client_key:
            raise ValueError("api_host needs a client_key")
        if max_staleness is not None and max_staleness <= 0:
            raise ValueError("max_staleness must be positive")
        self.defaults: Mapping[str, Any] = dict(defaults or {})
        self._max_staleness = max_staleness
        self._on_stale = on_stale
        self._on_exposure = on_exposure
        self._sticky = sticky_bucket_service
        self._listeners: list[Callable[[], None]] = [on_update] if on_update else []
        self._stale = False
        self._stale_lock = threading.Lock()
        self._version = 0
        self._born = time.monotonic()
        self._closed = False

        self._ready = threading.Event()
        self._payload: CompiledPayload | None = None
        if payload is not None:
            self._payload = _load_local(payload, decryption_key)
            self._version = 1
            self._ready.set()
        _lifecycle.register_fork_aware(self)

        transport = transport or UrllibTransport()
        if exposure_logger is None and ingest_key:
            if events_endpoint is None:
                if api_host is None:
                    raise ValueError("ingest_key needs api_host or events_endpoint")
                events_endpoint = f"{api_host.rstrip('/')}/api/v1/events"
            exposure_logger = ExposureLogger(events_endpoint, ingest_key, transport=transport)
        self.exposure_logger = exposure_logger

        self._remote: RemoteSource | None = None
        if api_host is not None and client_key:
            if max_staleness is not None and max_staleness <= ttl:
                log.warning("liftkit: max_staleness (%s s) <= ttl (%s s)", max_staleness, ttl)
            self._remote = RemoteSource(
                api_host=api_host,
                client_key=client_key,
                transport=transport,
                on_payload=self._set_payload,
                decryption_key=decryption_key,
                ttl=ttl,
                streaming=streaming,
                request_timeout=request_timeout,
                reconnect_delay=reconnect_delay,
                max_reconnect_delay=max_reconnect_delay,
            )
            self._remote.ensure_started()
            if init_timeout > 0:
                self.wait_for_first_load(init_timeout)

    # -- evaluation --------------------------------------------------------------------------

    def for_user(
        self,
        attributes: Mapping[str, Any] | None = None,
        *,
        url: str = "",
        forced_variations: Mapping[str, int] | None = None,
        forced_features: Mapping[str, Any] | None = None,
        qa_mode: bool = False,
    ) -> EvalContext:
        """An evaluation context for one user; cheap enough to create on every request."""
        remote = self._remote
        if remote is not None:
            remote.ensure_started()  # no-op unless this is a freshly forked child
        payload = self._fresh_payload()
        user = UserContext(
            attributes=attributes if attributes is not None else {},
            url=url,
            forced_variations=forced_variations or {},
            forced_features=forced_features or {},
            qa_mode=qa_mode,
        )
        ctx = EvalContext(self, payload, user, serving_defaults=payload is None)
        if self._on_exposure is not None or self.exposure_logger is not None:
            user.on_exposure = ctx._on_exposure
        if self._sticky is not None and payload is not None:
            user.sticky_docs = self._load_sticky_docs(payload, user.attributes)
            user.on_sticky_change = self._save_sticky_doc
        return ctx

    def evaluate(self, key: str, attributes: Mapping[str, Any] | None = None) -> EvalResult:
        """Shorthand for ``for_user(attributes).evaluate(key)``."""
        return self.for_user(attributes).evaluate(key)

    def default_result(self, key: str) -> EvalResult:
        """What a context serves for ``key`` without a usable payload."""
        if key in self.defaults:
            return EvalResult(key=key, value=self.defaults[key], source="defaultValue")
        return EvalResult(key=key, value=None, source="unknownFeature")

    # -- state -------------------------------------------------------------------------------

    @property
    def payload(self) -> CompiledPayload | None:
        """The payload currently held (even if too stale to serve), or None."""
        return self._payload

    @property
    def version(self) -> int:
        """How many payloads this client has held; increases by one on every update."""
        return self._version

    @property
    def ready(self) -> bool:
        """True once a payload has been loaded."""
        return self._payload is not None

    @property
    def age(self) -> float | None:
        """Seconds since the payload was last confirmed current; None for a local payload."""
        return None if self._remote is None else self._age(self._remote)

    @property
    def stale(self) -> bool:
        """True while contexts serve ``defaults`` because the payload is older than allowed."""
        age = self.age
        return self._max_staleness is not None and age is not None and age > self._max_staleness

    @property
    def exposure_stats(self) -> ExposureStats | None:
        logger = self.exposure_logger
        return None if logger is None else logger.stats

    def refresh(self) -> bool:
        """Fetch now, in this thread; True if the server confirmed or replaced the payload."""
        if self._remote is None or self._closed:
            return False
        self._remote.ensure_started()
        return self._remote.fetch()

    def wait_until_ready(self, timeout: float) -> bool:
        """Block until a payload is loaded; False if it was not within ``timeout`` seconds."""
        if self._remote is not None:
            self._remote.ensure_started()
        return self._ready.wait(timeout)

    def wait_for_first_load(self, timeout: float) -> bool:
        """Block until the first fetch has finished, either way (at most ``timeout`` seconds).

        Returns whether a payload is loaded; logs a warning (and does not raise) if not.
        """
        if self._payload is None and self._remote is not None:
            self._remote.ensure_started()
            self._remote.wait_first_attempt(timeout)
        if self._payload is None:
            log.warning("liftkit: no features loaded yet; serving defaults until they are")
            return False
        return True

    def add_update_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (in a background thread) after every payload change."""
        self._listeners.append(listener)

    def flush(self, timeout: float = 5.0) -> bool:
        """Send queued exposures now; True if all were settled in time (or there were none)."""
        logger = self.exposure_logger
        return True if logger is None else logger.flush(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Stop background work and send queued exposures. Contexts keep working afterwards."""
        self._closed = True
        if self._remote is not None:
            self._remote.close(timeout)
        if self.exposure_logger is not None:
            self.exposure_logger.close(timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        self._stale_lock = threading.Lock()
        ready, self._ready = self._ready, threading.Event()
        if self._payload is not None or ready.is_set():
            self._ready.set()

    def _set_payload(self, payload: CompiledPayload) -> None:
        self._payload = payload
        self._version += 1
        self._ready.set()
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("liftkit: an update listener failed")

    def _fresh_payload(self) -> CompiledPayload | None:
        """The payload to serve: None when there is none or it is older than max_staleness."""
        payload = self._payload
        if self._max_staleness is None or self._remote is None:
            return payload
        age = self._age(self._remote)
        if age > self._max_staleness:
            if not self._stale:
                self._became_stale(age)
            return None
        if self._stale:
            with self._stale_lock:
                if self._stale:
                    self._stale = False
                    log.info("liftkit: features are fresh again; serving them")
        return payload

    def _age(self, remote: RemoteSource) -> float:
        confirmed = remote.last_confirmed
        return time.monotonic() - (self._born if confirmed is None else confirmed)

    def _became_stale(self, age: float) -> None:
        with self._stale_lock:
            if self._stale:
                return
            self._stale = True
        log.warning(
            "liftkit: features not confirmed for %.0f s (max_staleness %.0f s); serving defaults",
            age,
            self._max_staleness,
        )
        if self._on_stale is not None:
            try:
                self._on_stale(age)
            except Exception:
                log.exception("liftkit: the on_stale callback failed")

    def _report_exposure(
        self,
        experiment: Mapping[str, Any],
        result: ExperimentResult,
        attributes: Mapping[str, Any],
    ) -> None:
        if self._on_exposure is not None:
            try:
                self._on_exposure(experiment, result)
            except Exception:
                log.exception("liftkit: the on_exposure callback failed")
        if self.exposure_logger is not None:
            self.exposure_logger.record(experiment, result, attributes)

    def _load_sticky_docs(
        self, payload: CompiledPayload, attributes: Mapping[str, Any]
    ) -> dict[str, dict[str, Any]]:
        assert self._sticky is not None
        wanted = {
            name: to_string(attributes[name])
            for name in payload.sticky_attributes
            if truthy(attributes.get(name))
        }
        if not wanted:
            return {}
        try:
            return sticky.load_docs(self._sticky, wanted)
        except Exception:
            log.exception("liftkit: loading sticky buckets failed; bucketing without them")
            return {}

    def _save_sticky_doc(self, doc: dict[str, Any]) -> None:
        assert self._sticky is not None
        try:
            self._sticky.save_assignments(doc)
        except Exception:
            log.exception("liftkit: saving a sticky bucket failed")


def _load_local(source: PayloadSource, decryption_key: str | None) -> CompiledPayload:
    if isinstance(source, CompiledPayload):
        return source
    if isinstance(source, Mapping):
        return CompiledPayload.from_dict(source, decryption_key=decryption_key)
    try:
        with open(source, "rb") as f:
            text = f.read()
    except OSError as exc:
        raise PayloadError(f"cannot read payload file {os.fspath(source)!r}: {exc}") from exc
    try:
        return CompiledPayload.from_json(text, decryption_key=decryption_key)
    except json.JSONDecodeError as exc:  # in case the engine lets it through
        raise PayloadError(f"payload file {os.fspath(source)!r} is not JSON: {exc}") from exc
