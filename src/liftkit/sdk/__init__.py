"""liftkit's SDK: evaluate feature flags and experiments locally, with the standard library only.

It reads GrowthBook-format SDK payloads (from a dict, a file or a liftkit/GrowthBook server) and
decides every flag in-process, identically to the GrowthBook SDK specification::

    from liftkit import Client

    client = Client(api_host="https://flags.example.com", client_key="sdk-abc")
    ctx = client.for_user({"id": "123", "country": "GB"})   # cheap: one per request
    if ctx.is_on("new-checkout"):
        ...
    price = ctx.get("price-test", 9.99)

Public API: :class:`Client`, :class:`AsyncClient` and :class:`EvalContext`; the results
:class:`EvalResult`, :class:`ExperimentResult` and :class:`Redirect`; sticky bucketing
(:class:`StickyBucketService`, :class:`InMemoryStickyBucketService`); exposure logging
(:class:`ExposureLogger`, :class:`ExposureStats`); the HTTP transport (:class:`Transport`,
:class:`UrllibTransport`); the exceptions in :mod:`liftkit.sdk.errors`. The OpenFeature provider
is in :mod:`liftkit.sdk.openfeature` (needs ``liftkit[openfeature]``). The rest is private.
"""

from liftkit.sdk._engine import CompiledPayload, Redirect
from liftkit.sdk._transport import LineStream, Response, Transport, UrllibTransport
from liftkit.sdk._types import EvalResult, ExperimentResult, UserContext
from liftkit.sdk.aio import AsyncClient
from liftkit.sdk.client import Client, EvalContext
from liftkit.sdk.errors import (
    DecryptionError,
    FetchError,
    LiftkitError,
    MissingDependencyError,
    PayloadError,
)
from liftkit.sdk.exposures import ExposureLogger, ExposureStats
from liftkit.sdk.sticky import InMemoryStickyBucketService, StickyBucketService

__all__ = [
    "AsyncClient",
    "Client",
    "CompiledPayload",
    "DecryptionError",
    "EvalContext",
    "EvalResult",
    "ExperimentResult",
    "ExposureLogger",
    "ExposureStats",
    "FetchError",
    "InMemoryStickyBucketService",
    "LiftkitError",
    "LineStream",
    "MissingDependencyError",
    "PayloadError",
    "Redirect",
    "Response",
    "StickyBucketService",
    "Transport",
    "UrllibTransport",
    "UserContext",
]
