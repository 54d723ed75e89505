"""Process lifecycle hooks: after ``fork`` and at interpreter exit.

Background threads do not survive ``fork``. Pre-fork servers (gunicorn, uWSGI, Celery prefork)
create the client in the parent and serve from children, so each object owning threads registers
here and is told, in the child, to forget its threads and locks; it restarts them on first use.
One hook per process is registered (not one per object), and objects are held weakly so
registering never keeps a client alive.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from typing import Protocol

log = logging.getLogger("liftkit.sdk")


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


class Closable(Protocol):
    def _close_at_exit(self) -> None: ...


_fork_aware: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_closables: weakref.WeakSet[Closable] = weakref.WeakSet()


def register_fork_aware(obj: ForkAware) -> None:
    _fork_aware.add(obj)


def register_at_exit(obj: Closable) -> None:
    _closables.add(obj)


def unregister_at_exit(obj: Closable) -> None:
    _closables.discard(obj)


def _run_fork_hooks() -> None:
    for obj in list(_fork_aware):
        try:
            obj._after_fork_in_child()
        except Exception:  # a hook must never break the child
            log.exception("liftkit: after-fork reset failed")


def _run_exit_hooks() -> None:
    for obj in list(_closables):
        try:
            obj._close_at_exit()
        except Exception:
            log.exception("liftkit: shutdown at exit failed")


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_run_fork_hooks)
atexit.register(_run_exit_hooks)
