"""Flag delivery: payload throughput against a bare ASGI app, and publish → SSE latency.

(a) ``GET /api/features/{key}`` served by liftkit's app vs a bare ASGI app that returns the same
bytes with the same headers; both run under uvicorn the same way (one worker, no access log,
uvicorn's default loop and HTTP parser) in this run, one after the other, twice each,
interleaved. Load comes from ``wrk`` when it is on PATH (``apt-get install wrk``), else from a
Python load generator in a separate process (asyncio, raw sockets, keep-alive). Prints
requests/s, p99 latency and liftkit's share of the bare app's rate (target ≥ 80 %).

(b) Publish → SSE: the time from starting ``registry.save`` to an SSE client holding the new
payload, over N publishes. "same process": the server runs in this process (uvicorn in a thread)
and the publish hook wakes the compiler. "cross-process": the server is another process and
learns of the publish by polling the SQLite epoch (``--poll`` seconds), or by LISTEN/NOTIFY
with ``--postgres URL``.

    python benchmarks/delivery.py                      # everything, default sizes
    python benchmarks/delivery.py throughput --seconds 10
    python benchmarks/delivery.py latency --publishes 200 [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test helpers: real server, SSE reader

ENV = "production"
#: The SQLite change-detection interval servers use unless configured otherwise.
DEFAULT_POLL = 0.25
#: (name, server mode) of the throughput runs; the first is the reference.
VARIANTS = [
    ("bare ASGI", "bare"),
    ("liftkit without gc.freeze", "app"),
    ("liftkit as `liftkit serve` runs it", "app-freeze"),
]


# -- the registry under test ------------------------------------------------------------------


def make_platform(data_dir: Path, database_url: str = "", poll: float = DEFAULT_POLL) -> Any:
    from liftkit.platform import Platform
    from liftkit.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url, change_poll_seconds=poll)
    platform = Platform(settings)
    platform.bootstrap()
    return platform


def seed(platform: Any) -> str:
    """A realistic small project (about 3 KB of payload); returns an SDK key."""
    rng = random.Random(7)
    save = platform.registry.save
    for i in range(2):
        save("experiments", {"key": f"exp-{i}", "status": "running"}, "bench")
    for i in range(24):
        rules: list[dict[str, Any]] = []
        if i % 3 == 1:
            country = rng.sample(["US", "GB", "DE", "FR", "IN"], 2)
            rules.append(
                {"type": "force", "value": True, "condition": {"country": {"$in": country}}}
            )
        if i % 4 == 2:
            rules.append({"type": "rollout", "value": True, "coverage": round(rng.random(), 2)})
        if i % 12 == 5:
            rules.append(
                {"type": "experiment", "experiment": f"exp-{i // 12}", "values": [False, True]}
            )
        environments = {ENV: {"enabled": True, "rules": rules}}
        save("features", {"key": f"flag-{i:02d}", "environments": environments}, "bench")
    token, _ = platform.accounts.create_key("sdk", created_by="bench", environment=ENV)
    return str(token)


# -- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_liftkit(data_dir: str, port: int, database_url: str, poll: float, mode: str) -> None:
    """liftkit's app as ``create_app`` assembles it (with ``delivery.HotPaths`` outermost), with
    or without the ``gc.freeze()`` that ``liftkit serve`` does once the app is built (the
    long-lived heap of FastAPI, pydantic and SQLAlchemy objects leaves the collector's scans; a
    full collection of it stalls the loop ~60 ms)."""
    import uvicorn

    from delivery_support import create_app
    from liftkit.platform import Platform
    from liftkit.settings import Settings

    settings = Settings(
        data_dir=Path(data_dir), database_url=database_url, change_poll_seconds=poll
    )
    platform = Platform(settings)
    app = create_app(platform)
    if mode.endswith("freeze"):
        gc.collect()
        gc.freeze()
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def serve_bare(spec_file: str, port: int) -> None:
    """A bare ASGI app: the same bytes and headers, nothing else."""
    import uvicorn

    spec = json.loads(Path(spec_file).read_text())
    body = spec["body"].encode()
    headers = [(k.encode(), v.encode()) for k, v in spec["headers"]]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    message = {"type": "http.response.body", "body": body}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send(start)
        await send(message)

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


@contextmanager
def process(*args: str, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, __file__, *args])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"server {args[0]} did not start") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- load -------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def load_wrk(url: str, seconds: float, connections: int) -> tuple[float, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return rate, float(value) * _UNITS[unit]


def load_python(url: str, seconds: float, connections: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, __file__, "loadgen", url, str(seconds), str(connections)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate, p99 = json.loads(out)
    return float(rate), float(p99)


def loadgen(url: str, seconds: float, connections: int) -> None:
    """Keep-alive GETs over ``connections`` sockets for ``seconds``; prints [rate, p99 ms]."""
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match is not None
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    latencies: list[float] = []

    async def worker(stop: float) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
        writer.close()

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print(json.dumps([len(latencies) / elapsed, p99]))


def throughput(seconds: float, connections: int, rounds: int) -> None:
    load = load_wrk if shutil.which("wrk") else load_python
    tool = "wrk -t1" if load is load_wrk else "python loadgen (wrk not on PATH)"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        platform = make_platform(data)
        key = seed(platform)
        platform.close()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/api/features/{key}"
        with process("serve-liftkit", str(data), str(port), "", "0.5", "app", ready_url=url):
            response = urllib.request.urlopen(url, timeout=5)
            body = response.read()
            headers = [
                (k.lower(), v)
                for k, v in response.headers.items()
                if k.lower() not in ("date", "server", "connection")
            ]
        spec = data / "bare.json"
        spec.write_text(json.dumps({"body": body.decode(), "headers": headers}))
        print(f"payload {len(body)} bytes; headers: {', '.join(k for k, _ in headers)}")
        print(f"load: {tool}, {connections} connections, {seconds:.0f} s per run")
        results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in VARIANTS}
        for _ in range(rounds):
            for name, mode in VARIANTS:
                port = free_port()
                target = f"http://127.0.0.1:{port}/api/features/{key}"
                args = (
                    ("serve-bare", str(spec), str(port))
                    if mode == "bare"
                    else ("serve-liftkit", str(data), str(port), "", "0.5", mode)
                )
                with process(*args, ready_url=target):
                    load(target, 2, connections)  # warm up
                    rate, p99 = load(target, seconds, connections)
                results[name].append((rate, p99))
                share = rate / results[VARIANTS[0][0]][-1][0]
                print(f"  {name:28s} {rate:9,.0f} req/s  p99 {p99:6.2f} ms  {share:5.0%} of bare")
        # The machine is shared: compare each run with the bare run of the same round, and
        # report the median of those ratios next to the best rates.
        bare = [rate for rate, _ in results[VARIANTS[0][0]]]
        print("summary (best rate, its p99, median share of the same round's bare rate):")
        for name, runs in results.items():
            rate, p99 = max(runs)
            share = statistics.median(r / b for (r, _), b in zip(runs, bare, strict=True))
            print(f"  {name:28s} {rate:9,.0f} req/s  p99 {p99:6.2f} ms  {share:5.0%}")
        print("target: liftkit >= 80% of the bare ASGI app")


# -- publish → SSE ----------------------------------------------------------------------------


def summarise(name: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(
        f"  {name:44s} n={len(samples)}  median {statistics.median(samples) * 1000:7.1f} ms"
        f"   p99 {p99 * 1000:7.1f} ms   max {samples[-1] * 1000:7.1f} ms"
    )


def measure(platform: Any, url: str, key: str, publishes: int, gap: float) -> list[float]:
    from delivery_support import SSEReader

    samples: list[float] = []
    with SSEReader(f"{url}/sub/{key}") as stream:
        while stream.retry is None:
            time.sleep(0.01)
        for i in range(publishes):
            environments = {ENV: {"enabled": True}}
            body = {"key": "flag-00", "description": f"publish {i}", "environments": environments}
            started = time.perf_counter()
            platform.registry.save("features", body, "bench")
            stream.next_event(timeout=10)
            samples.append(time.perf_counter() - started)
            time.sleep(random.uniform(0, gap))  # do not phase-lock with a poll interval
    return samples


def latency(publishes: int, poll: float, postgres: str | None) -> None:
    from delivery_support import live_server

    print(f"publish → SSE event, {publishes} publishes each")
    with tempfile.TemporaryDirectory() as tmp:
        platform = make_platform(Path(tmp) / "same")
        key = seed(platform)
        with live_server(platform) as url:
            summarise(
                "same process (SQLite, publish hook)", measure(platform, url, key, publishes, 0.02)
            )
        platform.close()

        backends = [("SQLite", "", f"epoch poll {poll} s")]
        if postgres:
            backends.append(("PostgreSQL", postgres, "LISTEN/NOTIFY"))
        for name, database_url, how in backends:
            data = Path(tmp) / name
            platform = make_platform(data, database_url, poll)
            key = seed(platform)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            args = ("serve-liftkit", str(data), str(port), database_url, str(poll), "app")
            with process(*args, ready_url=f"{url}/readyz"):
                samples = measure(platform, url, key, publishes, poll)
            summarise(f"cross-process ({name}, {how})", samples)
            platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="flag delivery benchmarks")
    sub = parser.add_subparsers(dest="command")
    t = sub.add_parser("throughput")
    t.add_argument("--seconds", type=float, default=10)
    t.add_argument("--connections", type=int, default=32)
    t.add_argument("--rounds", type=int, default=2)
    lat = sub.add_parser("latency")
    lat.add_argument("--publishes", type=int, default=200)
    lat.add_argument("--poll", type=float, default=DEFAULT_POLL)
    lat.add_argument("--postgres", default=None, help="a PostgreSQL URL (an empty database)")
    internal = [("serve-liftkit", 5), ("serve-bare", 2), ("loadgen", 3)]
    for name, count in internal:
        sub.add_parser(name).add_argument("args", nargs=count)
    args = parser.parse_args()
    if args.command == "serve-liftkit":
        data_dir, port, database_url, poll, mode = args.args
        serve_liftkit(data_dir, int(port), database_url, float(poll), mode)
    elif args.command == "serve-bare":
        serve_bare(args.args[0], int(args.args[1]))
    elif args.command == "loadgen":
        loadgen(args.args[0], float(args.args[1]), int(args.args[2]))
    elif args.command == "throughput":
        throughput(args.seconds, args.connections, args.rounds)
    elif args.command == "latency":
        latency(args.publishes, args.poll, args.postgres)
    else:
        throughput(10, 32, 2)
        latency(200, DEFAULT_POLL, None)


if __name__ == "__main__":
    main()
