"""Spark SQL through pyspark (the engine behind Databricks), in local mode or on a cluster.

The process has one SparkSession: ``connect`` calls ``getOrCreate``, so it reuses a session
that exists (its master wins over ``url``; temp views registered on it are visible) and
``close`` leaves it running, because starting a JVM takes seconds. Stop it with
``SparkSession.getActiveSession().stop()`` when the process is done with Spark.

Spark SQL has no read-only mode: ``ensure_select`` is the only guard. The timeout tags the
query's jobs and cancels the tag when the time is up.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC
from typing import Any

from liftkit.warehouse.connections import (
    Connection,
    QueryResult,
    QueryTimeout,
    WarehouseError,
    Watchdog,
    ensure_select,
    redact,
    timeout_message,
)

# Local mode without the web UI, the console progress bar or 200 shuffle partitions for a
# few thousand rows; the session's time zone is UTC, like every liftkit connection.
SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
}
_INTERRUPT = "spark.job.interruptOnCancel"
LOCAL_SETTINGS = {"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"}


def connect(url: str | None, *, timeout: float, threads: int | None) -> Connection:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise WarehouseError("pyspark is not installed: pip install 'liftkit[spark]'") from None
    master = url or f"local[{threads or 2}]"
    builder = SparkSession.builder.master(master).appName("liftkit")
    local = master.startswith("local")
    for key, value in {**SETTINGS, **(LOCAL_SETTINGS if local else {})}.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as error:  # the JVM failed to start, or the master is unreachable
        raise WarehouseError(f"cannot start Spark ({redact(master)}): {error}") from None
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # an existing session keeps its own
    if local:
        spark.sparkContext.setLogLevel("ERROR")
    _quiet_query_context_logger()
    return SparkConnection(spark, timeout=timeout)


def _quiet_query_context_logger() -> None:
    """pyspark 4 logs every SQL error again, as JSON with the JVM's stack trace, on stderr.

    The error reaches the caller as a WarehouseError with Spark's message, so that copy is
    noise. The logger is made through pyspark (it passes keyword fields a plain Logger would
    reject); pyspark 3.5 has no such logger.
    """
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:
        return
    PySparkLogger.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)


class SparkConnection:
    dialect = "spark"

    def __init__(self, spark: Any, *, timeout: float) -> None:
        self.spark = spark
        self.timeout = timeout

    def query(self, sql: str) -> QueryResult:
        ensure_select(sql, self.dialect)
        context = self.spark.sparkContext
        tag = f"liftkit-{uuid.uuid4().hex}"
        started = time.perf_counter()
        # Both thread-local: tag the jobs this thread starts, and have cancelling them interrupt
        # their running tasks, so a timed-out query stops using the cores at once. (Spark may
        # then log a harmless "Block broadcast_N does not exist" from the interrupted tasks.)
        interrupt = context.getLocalProperty(_INTERRUPT)
        context.addJobTag(tag)
        context.setLocalProperty(_INTERRUPT, "true")
        watchdog = Watchdog(self.timeout, lambda: context.cancelJobsWithTag(tag))
        try:
            with watchdog:
                frame = self.spark.sql(sql)
                fields = frame.schema.fields
                raw = frame.collect()
        except Exception as error:  # pyspark's captured exceptions and py4j errors
            if watchdog.fired:
                raise QueryTimeout(timeout_message(self.timeout)) from None
            raise WarehouseError(f"Spark: {_message(error)}") from None
        finally:
            context.removeJobTag(tag)
            context.setLocalProperty(_INTERRUPT, interrupt)
        columns = tuple(f.name for f in fields)
        rows = [
            tuple(_value(v, f.dataType) for v, f in zip(row, fields, strict=True)) for row in raw
        ]
        return QueryResult(columns, rows, time.perf_counter() - started)

    def close(self) -> None:
        """Leaves the shared SparkSession running (see the module docstring)."""


def _message(error: Exception) -> str:
    """Spark's message without the JVM stack trace."""
    text = str(error).strip()
    return text.split("\n\tat ", 1)[0].strip()


def _value(value: Any, data_type: Any) -> Any:
    """A collected value as liftkit returns it, by its Spark type."""
    from pyspark.sql import types

    if value is None:
        return None
    if isinstance(data_type, types.TimestampType):
        # pyspark builds a naive datetime in the *Python process's* local time zone (not the
        # session's); astimezone reads a naive datetime the same way, so this is exact.
        return value.astimezone(UTC)
    if isinstance(data_type, types.TimestampNTZType):
        return value.replace(tzinfo=UTC)
    if isinstance(data_type, types.DecimalType):
        return float(value)
    if isinstance(data_type, types.ArrayType):
        return [_value(v, data_type.elementType) for v in value]
    if isinstance(data_type, types.MapType):
        return {k: _value(v, data_type.valueType) for k, v in value.items()}
    if isinstance(data_type, types.StructType):
        return {f.name: _value(v, f.dataType) for v, f in zip(value, data_type.fields, strict=True)}
    return value
