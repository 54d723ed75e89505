"""liftkit: an open-source experimentation platform.

``liftkit.Client`` is the SDK client (standard library only); the server, statistics and CLI
live in their own subpackages and are not imported here, so ``import liftkit.stats`` does not
pull in the SDK and ``import liftkit`` does not pull in numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"
__all__ = ["Client", "EvalContext", "EvalResult", "__version__"]

if TYPE_CHECKING:
    from liftkit.sdk import Client, EvalContext, EvalResult


def __getattr__(name: str) -> Any:
    if name in ("Client", "EvalContext", "EvalResult"):
        import liftkit.sdk

        return getattr(liftkit.sdk, name)
    raise AttributeError(f"module 'liftkit' has no attribute {name!r}")
