"""Exceptions raised by the SDK.

Hierarchy::

    LiftkitError
    ├── PayloadError            a payload could not be read (bad JSON, wrong shape)
    │   └── DecryptionError     an encrypted payload could not be decrypted
    │       └── MissingDependencyError   the optional ``cryptography`` package is absent
    └── FetchError              the server could not be reached or answered an error

Evaluation itself never raises: bad conditions fail closed, unknown features give a result
whose source is ``unknownFeature``.
"""

from __future__ import annotations


class LiftkitError(Exception):
    """Base class of every error the SDK raises."""


class PayloadError(LiftkitError):
    """A payload could not be read."""


class DecryptionError(PayloadError):
    """An encrypted payload could not be decrypted (wrong key, corrupt data)."""


class MissingDependencyError(DecryptionError):
    """An optional dependency needed for this payload is not installed."""


class FetchError(LiftkitError):
    """The payload could not be fetched from the server."""
