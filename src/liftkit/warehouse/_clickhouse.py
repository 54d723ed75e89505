"""ClickHouse: embedded (chDB) or a server over its HTTP interface.

Both transports ask for ``JSONCompactEachRowWithNamesAndTypes`` and share one parser, so the
parser is exercised against real ClickHouse output by the chDB tests; the HTTP transport is
tested with ``httpx.MockTransport`` (request shape, parsing, errors), as there is no server here.

Every query runs with ``readonly=1`` (which also forbids changing settings, so a query's own
SETTINGS clause cannot lift ``max_execution_time``), ``join_use_nulls=1`` (a LEFT JOIN miss is
NULL, not the type's default 0 or '') and ``session_timezone='UTC'``.

chDB sessions (chdb 4.x): the embedded server is process-wide and bound to ONE database path
at a time. Any number of sessions may be open on that path, each with its own settings (so a
read-only session and a writer coexist), but opening another path, or ``:memory:``, fails
until every session on the first path is closed. Each connection here is its own read-only
``chdb.session.Session``; the settings are passed in its connection string, which chDB applies
as that session's settings. ``chdb:/path?database=name`` picks the default database, so one
directory can hold many data sets (the test support uses this). readonly=1 also refuses the
file()/url() table functions: a connection reads its database and nothing else.

A chDB session whose query fails mid-execution (a timeout, throwIf) prepends that query's
partial output to its next result (chdb 4.4), so after any error the connection replaces its
session with a fresh one (milliseconds: the server stays up).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from liftkit.warehouse.connections import (
    Connection,
    NotReadOnly,
    QueryResult,
    QueryTimeout,
    WarehouseError,
    ensure_select,
    redact,
    scrub,
    timeout_message,
)

if TYPE_CHECKING:
    import httpx

FORMAT = "JSONCompactEachRowWithNamesAndTypes"
_TIMEOUT_CODE = "159"  # TIMEOUT_EXCEEDED
_READONLY_CODE = "164"  # READONLY
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def settings(timeout: float, threads: int | None) -> dict[str, str]:
    """The settings every query runs with, on both transports.

    readonly=1 travels in the same batch as the others: ClickHouse checks a batch against the
    settings in force before it, so the rest are still accepted (checked with chDB), and from
    then on the query cannot change any of them.
    """
    values = {
        "max_execution_time": f"{timeout:g}",
        "join_use_nulls": "1",
        "session_timezone": "UTC",
        "output_format_json_quote_64bit_integers": "0",
        "output_format_json_quote_denormals": "1",  # inf/nan as strings, not null
    }
    if threads is not None:
        values["max_threads"] = str(int(threads))
    values["readonly"] = "1"
    return values


def connect(
    url: str | None, *, timeout: float, threads: int | None, transport: httpx.BaseTransport | None
) -> Connection:
    if url and url.startswith("chdb:"):
        return ChdbConnection(url, timeout=timeout, threads=threads)
    if url and url.startswith(("http://", "https://")):
        return HttpConnection(url, timeout=timeout, threads=threads, transport=transport)
    shown = redact(url) if url else "no URL"
    raise WarehouseError(
        f"clickhouse needs chdb:[path] (embedded) or an http(s):// server URL, got {shown}"
    )


class ChdbConnection:
    dialect = "clickhouse"

    def __init__(self, url: str, *, timeout: float, threads: int | None) -> None:
        try:
            from chdb.session import Session
        except ImportError:
            raise WarehouseError(
                "chDB is not installed: pip install 'liftkit[clickhouse]'"
            ) from None
        self.timeout = timeout
        location, _, query = url.removeprefix("chdb:").partition("?")
        options = settings(timeout, threads)
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key != "database" or not _NAME.match(value):
                raise WarehouseError(f"chdb URLs take only ?database=<name>, got {key}={value!r}")
            options["database"] = value
        if location in ("", ":memory:"):
            self.path = ":memory:"
        else:
            self.path = os.path.abspath(location)
            if not os.path.isdir(self.path):
                raise WarehouseError(f"chDB database directory {self.path} does not exist")
        self._session_class: Any = Session  # chdb's functions carry no annotations
        self._connection_string = self.path + "?" + "&".join(f"{k}={v}" for k, v in options.items())
        self._session: Any = self._open()

    def _open(self) -> Any:
        try:
            return self._session_class(self._connection_string)
        except Exception as error:  # chDB raises RuntimeError with the server's message
            text = str(error)
            hint = ""
            if "already initialized with path" in text:
                hint = " (chDB opens one database path per process: close the other one first)"
            raise WarehouseError(f"cannot open chDB {self.path}: {text}{hint}") from None

    def query(self, sql: str) -> QueryResult:
        ensure_select(sql, self.dialect)
        if self._session is None:
            raise WarehouseError("the chDB connection is closed")
        started = time.perf_counter()
        try:
            result = self._session.query(sql, FORMAT)
        except Exception as error:  # chdb.ChdbError or RuntimeError
            # chdb 4.4: output a query wrote before failing (its header, some rows) is
            # prepended to the session's next result. A fresh session starts clean.
            self._session.close()
            self._session = self._open()
            raise _error(str(error), None, self.timeout) from None
        text = result.bytes().decode("utf-8", errors="replace")
        columns, rows = parse(text)
        return QueryResult(columns, rows, time.perf_counter() - started)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class HttpConnection:
    """A ClickHouse server's HTTP interface; the URL's user:password travel as headers."""

    dialect = "clickhouse"

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        threads: int | None,
        transport: httpx.BaseTransport | None,
    ) -> None:
        import httpx

        self._httpx = httpx
        self.timeout = timeout
        self._url = url
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        self.endpoint = urlunsplit((parts.scheme, host, parts.path or "/", "", ""))
        self.params = dict(parse_qsl(parts.query))  # e.g. ?database=analytics
        self.params.update(settings(timeout, threads))
        # The whole result is buffered server-side, so an error mid-query is an HTTP error
        # rather than a 200 whose body ends with an exception text.
        self.params.update({"default_format": FORMAT, "wait_end_of_query": "1"})
        headers = {}
        if parts.username:
            headers["X-ClickHouse-User"] = unquote(parts.username)
        if parts.password:
            headers["X-ClickHouse-Key"] = unquote(parts.password)
        self._client = httpx.Client(
            transport=transport,
            headers=headers,
            timeout=httpx.Timeout(timeout + 10, connect=10),
        )
        try:
            response = self._client.get(self.endpoint.rstrip("/") + "/ping")
        except httpx.HTTPError as error:
            self._client.close()
            raise WarehouseError(
                f"cannot reach ClickHouse at {redact(url)}: {scrub(str(error), url)}"
            ) from None
        if response.status_code != 200:
            self._client.close()
            raise WarehouseError(
                f"ClickHouse at {redact(url)} answered /ping with HTTP {response.status_code}"
            )

    def query(self, sql: str) -> QueryResult:
        ensure_select(sql, self.dialect)
        httpx = self._httpx
        started = time.perf_counter()
        try:
            response = self._client.post(self.endpoint, params=self.params, content=sql.encode())
        except httpx.TimeoutException:
            raise QueryTimeout(timeout_message(self.timeout)) from None
        except httpx.HTTPError as error:
            raise WarehouseError(
                f"ClickHouse at {redact(self._url)}: {scrub(str(error), self._url)}"
            ) from None
        if response.status_code != 200:
            code = response.headers.get("X-ClickHouse-Exception-Code")
            message = scrub(response.text.strip(), self._url) or f"HTTP {response.status_code}"
            raise _error(message, code, self.timeout)
        columns, rows = parse(response.text)
        return QueryResult(columns, rows, time.perf_counter() - started)

    def close(self) -> None:
        self._client.close()


def _error(message: str, code: str | None, timeout: float) -> WarehouseError:
    """The exception for a ClickHouse error text (``Code: 159. DB::Exception: ...``)."""
    if code is None:
        found = re.search(r"Code: (\d+)", message)
        code = found.group(1) if found else None
    if code == _TIMEOUT_CODE:
        return QueryTimeout(timeout_message(timeout))
    if code == _READONLY_CODE:
        return NotReadOnly(f"ClickHouse: {message}")
    return WarehouseError(f"ClickHouse: {message}")


def parse(text: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """Columns and typed rows from JSONCompactEachRowWithNamesAndTypes output."""
    lines = [line for line in text.split("\n") if line.strip()]  # not splitlines: U+2028 in data
    if not lines:
        return (), []
    if len(lines) < 2:
        raise WarehouseError(f"ClickHouse: unexpected response: {lines[0][:200]}")
    try:
        names = json.loads(lines[0])
        converters = [converter(t) for t in json.loads(lines[1])]
        rows = [
            tuple(
                convert(value) for convert, value in zip(converters, json.loads(line), strict=True)
            )
            for line in lines[2:]
        ]
    except (ValueError, TypeError) as error:
        raise WarehouseError(f"ClickHouse: cannot read the response ({error})") from None
    return tuple(names), rows


def _nullable(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def converter(ch_type: str) -> Callable[[Any], Any]:
    """Turns a JSON value of ClickHouse type ``ch_type`` into liftkit's Python value."""
    t = ch_type
    while t.startswith(("Nullable(", "LowCardinality(")):
        t = t[t.index("(") + 1 : -1]
    if re.fullmatch(r"U?Int\d+", t):
        return _nullable(int)  # int() also reads the quoted form older servers send
    if re.fullmatch(r"B?Float\d+", t) or t.startswith("Decimal"):
        return _nullable(float)  # reads "inf", "-inf", "nan", "-nan" too
    if t == "Bool":
        return _nullable(bool)
    if t in ("Date", "Date32"):
        return _nullable(date.fromisoformat)
    if t == "DateTime" or t.startswith(("DateTime(", "DateTime64(")):
        found = re.search(r"'([^']+)'", t)
        zone = ZoneInfo(found.group(1)) if found else UTC  # no zone: the session's, UTC

        def timestamp(value: str) -> datetime:
            return datetime.fromisoformat(value).replace(tzinfo=zone).astimezone(UTC)

        return _nullable(timestamp)
    if t.startswith("Array("):
        inner = converter(t[len("Array(") : -1])
        return _nullable(lambda values: [inner(v) for v in values])
    return lambda value: value
