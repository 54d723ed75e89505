"""Warehouses: connections and dialect-neutral analysis SQL."""

from liftkit.warehouse.connections import (
    RUNNABLE,
    Connection,
    Dialect,
    NotReadOnly,
    QueryResult,
    QueryTimeout,
    WarehouseBusy,
    WarehouseError,
    connect,
    ensure_select,
    expand_env,
    redact,
)

__all__ = [
    "RUNNABLE",
    "Connection",
    "Dialect",
    "NotReadOnly",
    "QueryResult",
    "QueryTimeout",
    "WarehouseBusy",
    "WarehouseError",
    "connect",
    "ensure_select",
    "expand_env",
    "redact",
]
