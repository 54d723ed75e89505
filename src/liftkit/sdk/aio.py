"""The client for asyncio applications (FastAPI, Starlette, aiohttp …).

Evaluation is CPU-only and fast, so ``for_user`` and the :class:`EvalContext` it returns are the
same synchronous objects as in :mod:`liftkit.sdk.client`; only what can wait on the network is
awaitable here. Payload updates keep arriving from the same background threads as the
synchronous client (one code path, fork-safe, and not starved when a handler hogs the loop);
every blocking step the event loop would otherwise wait on runs in ``asyncio.to_thread``.

::

    async with AsyncClient(api_host="https://flags.example.com", client_key="sdk-abc") as flags:
        ctx = flags.for_user({"id": user_id})
        if ctx.is_on("new-checkout"):
            ...
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from liftkit.sdk._engine import CompiledPayload
from liftkit.sdk._types import EvalResult
from liftkit.sdk.client import Client, EvalContext, PayloadSource
from liftkit.sdk.exposures import ExposureStats


class AsyncClient:
    """Awaitable lifecycle around :class:`Client`; takes the same keyword arguments.

    Constructing it never blocks (``init_timeout`` is honoured by :meth:`start`, which
    ``create`` and ``async with`` call).
    """

    def __init__(
        self, payload: PayloadSource | None = None, *, init_timeout: float = 5.0, **options: Any
    ) -> None:
        self._init_timeout = init_timeout
        self.client = Client(payload, init_timeout=0, **options)
        """The synchronous client doing the work (for APIs that want one, e.g. OpenFeature)."""

    @classmethod
    async def create(
        cls, payload: PayloadSource | None = None, *, init_timeout: float = 5.0, **options: Any
    ) -> AsyncClient:
        """Build a client and wait (without blocking the loop) for its first payload."""
        self = cls(payload, init_timeout=init_timeout, **options)
        try:
            await self.start()
        except BaseException:  # cancelled while waiting: do not leak the threads
            await self.aclose()
            raise
        return self

    async def start(self) -> bool:
        """Wait up to ``init_timeout`` for the first fetch; True if a payload is loaded."""
        if self.client.ready or self._init_timeout <= 0:
            return self.client.ready
        return await asyncio.to_thread(self.client.wait_for_first_load, self._init_timeout)

    async def __aenter__(self) -> AsyncClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- evaluation (synchronous: no I/O) ----------------------------------------------------

    def for_user(
        self,
        attributes: Mapping[str, Any] | None = None,
        *,
        url: str = "",
        forced_variations: Mapping[str, int] | None = None,
        forced_features: Mapping[str, Any] | None = None,
        qa_mode: bool = False,
    ) -> EvalContext:
        return self.client.for_user(
            attributes,
            url=url,
            forced_variations=forced_variations,
            forced_features=forced_features,
            qa_mode=qa_mode,
        )

    def evaluate(self, key: str, attributes: Mapping[str, Any] | None = None) -> EvalResult:
        return self.client.evaluate(key, attributes)

    # -- state -------------------------------------------------------------------------------

    @property
    def payload(self) -> CompiledPayload | None:
        return self.client.payload

    @property
    def ready(self) -> bool:
        return self.client.ready

    @property
    def stale(self) -> bool:
        return self.client.stale

    @property
    def age(self) -> float | None:
        return self.client.age

    @property
    def version(self) -> int:
        return self.client.version

    @property
    def exposure_stats(self) -> ExposureStats | None:
        return self.client.exposure_stats

    # -- I/O ---------------------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Fetch now; True if the server confirmed or replaced the payload."""
        return await asyncio.to_thread(self.client.refresh)

    async def wait_until_ready(self, timeout: float) -> bool:
        return self.client.ready or await asyncio.to_thread(self.client.wait_until_ready, timeout)

    async def flush(self, timeout: float = 5.0) -> bool:
        """Send queued exposures; True if all were settled in time."""
        return await asyncio.to_thread(self.client.flush, timeout)

    async def aclose(self, timeout: float = 2.0) -> None:
        """Stop background work and send queued exposures."""
        await asyncio.to_thread(self.client.close, timeout)
