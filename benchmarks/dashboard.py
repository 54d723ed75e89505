"""The demo's build time, and how long the dashboard's pages take to render on its data.

Target (issue 9): ``liftkit demo`` is ready to serve in under a minute. Pages have no target; the
figures show where a page is slow. Each page is requested through uvicorn over loopback by a
logged-in httpx client, ``--repeat`` times after one warm-up request; the peer is ``/healthz``
on the same server (the floor: routing and HTTP with no work), so the ratio column says how
much a page costs beyond serving any request.

    .venv/bin/python benchmarks/dashboard.py                 # 20,000 simulated users, as the demo
    .venv/bin/python benchmarks/dashboard.py --users 4000    # as the browser tests
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from liftkit.app import create_app
from liftkit.demo import build
from liftkit.platform import Platform
from liftkit.settings import Settings

PAGES = [
    "/healthz",
    "/",
    "/features",
    "/features/new-search",
    "/experiments",
    "/experiments/pricing-2026",
    "/experiments/pricing-2026/results",
    "/playbooks",
    "/metrics/",
    "/metrics/purchase",
    "/knowledge",
    "/knowledge?q=checkout",
    "/ideas",
    "/calendar",
    "/leaderboard",
    "/digest",
    "/live",
    "/settings",
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        settings = Settings(data_dir=Path(tmp), port=port)
        start = time.perf_counter()
        demo = build(settings, users=args.users)
        built = time.perf_counter() - start
        print(f"demo build ({args.users:,} users): {built:.1f} s (target: under 60 s)")

        platform = Platform(settings)
        server = uvicorn.Server(
            uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="error")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                login = client.post(
                    "/login",
                    data={
                        "email": demo.credentials.admin_email,
                        "password": demo.credentials.admin_password,
                    },
                    headers={"X-Liftkit-Csrf": "1", "HX-Request": "true"},
                )
                login.raise_for_status()
                medians: dict[str, float] = {}
                for page in PAGES:
                    client.get(page).raise_for_status()
                    times = []
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        client.get(page).raise_for_status()
                        times.append(time.perf_counter() - t)
                    medians[page] = statistics.median(times)
        finally:
            server.should_exit = True
            thread.join(10)
            platform.close()

    floor = medians["/healthz"]
    print(f"\n{'page':<40} {'median ms':>10} {'× /healthz':>11}")
    for page, median in medians.items():
        print(f"{page:<40} {median * 1000:>10.1f} {median / floor:>11.0f}")


if __name__ == "__main__":
    main()
