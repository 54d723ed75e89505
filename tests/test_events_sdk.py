"""SDK → ``liftkit serve`` → event store, end to end, through public interfaces only.

A real server process serves a running experiment behind a feature rule; ``liftkit.Client``
fetches the payload over HTTP, evaluates the feature for 200 users and its built-in exposure
logger posts the exposures with an ingest key. The store must then hold one exposure per user
with the variation the SDK served, and the live counts (REST and /metrics) must agree.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import liftkit
from events_support import Server, bootstrap, call, get_json, read_store

EXPERIMENT = "checkout-test"
FEATURE = "checkout-layout"
VARIATIONS = ["control", "compact", "wide"]
WEIGHTS = [0.5, 0.3, 0.2]
USERS = 200


def test_sdk_exposures_reach_the_store_and_the_live_counts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    platform, admin, ingest = bootstrap(data)
    try:
        platform.registry.save(
            "experiments",
            {
                "key": EXPERIMENT,
                "status": "running",
                "variations": [
                    {"key": key, "payload": key, "weight": weight}
                    for key, weight in zip(VARIATIONS, WEIGHTS, strict=True)
                ],
                "phases": [{"name": "main", "started_at": datetime.now(UTC) - timedelta(hours=1)}],
            },
            "test",
        )
        platform.registry.save(
            "features",
            {
                "key": FEATURE,
                "value_type": "string",
                "default_value": "off",
                "environments": {
                    "production": {
                        "enabled": True,
                        "rules": [{"type": "experiment", "experiment": EXPERIMENT}],
                    }
                },
            },
            "test",
        )
        sdk_key, _ = platform.accounts.create_key(
            "sdk", created_by="test", environment="production"
        )
    finally:
        platform.close()

    with Server(data) as server:
        client = liftkit.Client(
            api_host=server.base,
            client_key=sdk_key,
            ingest_key=ingest,
            streaming=False,
            init_timeout=10,
        )
        try:
            assert client.ready
            served: dict[str, int] = {}
            for i in range(USERS):
                user = {"id": f"user-{i}", "plan": "pro" if i % 3 else "free"}
                ctx = client.for_user(user)
                result = ctx.evaluate(FEATURE)
                assert result.experiment_key == EXPERIMENT, result
                assert result.variation_id is not None
                assert result.value == VARIATIONS[result.variation_id]
                served[user["id"]] = result.variation_id
                # The same user again, in a new context (another request): the logger
                # deduplicates, so it is still one exposure.
                again = client.for_user(user).evaluate(FEATURE)
                assert again.variation_id == result.variation_id
            assert client.flush(timeout=20)
            stats = client.exposure_stats
            assert stats is not None
            assert (stats.sent, stats.failed, stats.dropped, stats.queued) == (USERS, 0, 0, 0)
            assert stats.deduplicated == USERS
        finally:
            client.close()
        per_variation = Counter(served.values())
        expected_units = [per_variation[v] for v in range(len(VARIATIONS))]
        assert all(expected_units), expected_units  # every arm served: the check means something

        # (b) live counts, counted as the exposures were acknowledged
        live = get_json(f"{server.base}/api/v1/experiments/{EXPERIMENT}/exposures", admin)
        assert live["units"] == expected_units
        assert live["total"] == USERS
        assert live["multiple_exposures"] == 0
        assert live["weights"] == WEIGHTS
        assert live["srm"]["p_value"] is not None

        # (c) the same numbers on /metrics
        status, body = call("GET", server.base + "/metrics")
        assert status == 200
        metrics = body.decode()
        exported = {
            int(variation): float(value)
            for variation, value in re.findall(
                r'^liftkit_experiment_exposed_units\{experiment="'
                + re.escape(EXPERIMENT)
                + r'",variation="(\d+)"\} (\S+)$',
                metrics,
                re.MULTILINE,
            )
        }
        assert exported == {v: float(n) for v, n in enumerate(expected_units)}, metrics

        loaded = server.wait_loaded(admin)["loaded"]
        assert loaded["exposures"] == USERS and loaded["failures"] == 0, loaded
        server.stop()

    # (a) one stored exposure per user, with the variation the SDK returned to that user
    rows = read_store(
        data,
        "SELECT hash_attribute, hash_value, variation_id, variation_key, feature_key, "
        "attributes, event_id FROM exposures WHERE experiment_key = ?",
        [EXPERIMENT],
    )
    assert len(rows) == USERS
    assert len({row[6] for row in rows}) == USERS
    stored = {}
    for attribute, unit, variation, variation_key, feature, attributes, _ in rows:
        assert attribute == "id"
        assert variation_key == VARIATIONS[variation]
        assert feature == FEATURE
        assert json.loads(attributes)["id"] == unit
        stored[unit] = variation
    assert stored == served
    assert read_store(data, "SELECT count(*) FROM events") == [(0,)]
