"""Metric features checked against a direct pandas/numpy computation over the same raw rows.

Windows, capping, quantiles, activation, segments, custom exposure SQL and corrections: each is
computed here independently of the SQL generator, and the warehouse's answer must agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis_support import ACTOR, START, Planted, registry_objects, simulate
from liftkit import analysis, stats
from liftkit.analysis import Snapshot
from liftkit.platform import Platform
from liftkit.settings import Settings
from warehouse_support import load_tables

PLANTED = Planted(users=3000, lift=0.2, seed=21)


def run(tmp_path: Path, extra: list[tuple[str, dict[str, Any]]], **settings: Any) -> Snapshot:
    platform = Platform(Settings(data_dir=tmp_path / "platform"))
    platform.bootstrap()
    objects = registry_objects("duckdb", **settings)
    for name, body in objects + extra:
        platform.registry.save(name, body, ACTOR)
    conn = load_tables("duckdb", simulate(PLANTED), tmp_path=tmp_path)
    try:
        return analysis.run(platform, "planted", connection=conn, save=False)
    finally:
        conn.close()
        platform.close()


def secondary(*keys: str, **settings: Any) -> dict[str, Any]:
    body = next(b for c, b in registry_objects("duckdb") if c == "experiments")
    body["metrics"]["secondary"] = list(keys)
    body["analysis"].update(settings)
    return body


@pytest.fixture(scope="module")
def raw() -> dict[str, pd.DataFrame]:
    tables = simulate(PLANTED)
    exposures = tables["exposures"].to_pandas()
    units = exposures.groupby("hash_value").agg(
        at=("timestamp", "min"), arm=("variation_id", "min")
    )
    events = tables["events"].to_pandas()
    orders = events[events.name == "purchase"].merge(units, left_on="user_id", right_index=True)
    return {"units": units, "orders": orders, "events": events}


def per_unit(raw: dict[str, pd.DataFrame], rows: pd.DataFrame, agg: str = "sum") -> pd.Series:
    return rows.groupby("user_id")["value"].agg(agg).reindex(raw["units"].index, fill_value=0.0)


def stat(snap: Snapshot, metric: str, variation: str) -> dict[str, Any]:
    return next(s for s in snap.statistics if (s["metric"], s["variation"]) == (metric, variation))


def test_windows_and_capping_match_pandas(tmp_path: Path, raw: dict[str, pd.DataFrame]) -> None:
    metrics = [
        ("metrics", {"key": "first_day", "type": "mean", "cuped": False,
                     "numerator": {"fact_table": "orders", "column": "amount"},
                     "window": {"type": "conversion", "delay_hours": 1, "hours": 24}}),
        ("metrics", {"key": "capped", "type": "mean", "cuped": False,
                     "numerator": {"fact_table": "orders", "column": "amount"},
                     "capping": {"type": "percentile", "value": 0.9}}),
        ("metrics", {"key": "biggest", "type": "mean", "cuped": False,
                     "numerator": {"fact_table": "orders", "column": "amount",
                                   "aggregation": "max"},
                     "capping": {"type": "absolute", "value": 40}}),
        ("metrics", {"key": "orders", "type": "mean", "cuped": False,
                     "numerator": {"fact_table": "orders", "aggregation": "count"},
                     "window": {"type": "lookback", "hours": 48}}),
    ]  # fmt: skip
    experiment = ("experiments", secondary("first_day", "capped", "biggest", "orders"))
    snap = run(tmp_path, [*metrics, experiment])
    o = raw["orders"]
    hours = (o.timestamp - o["at"]).dt.total_seconds() / 3600
    end = START + pd.Timedelta(days=10)
    expected = {
        "first_day": per_unit(raw, o[(hours >= 1) & (hours < 25)]),
        "capped": per_unit(raw, o[hours >= 0]),
        "biggest": per_unit(raw, o[hours >= 0], "max").clip(upper=40),
        "orders": per_unit(raw, o[(hours >= 0) & (o.timestamp >= end - pd.Timedelta(hours=48))],
                           "count"),
    }  # fmt: skip
    arms = raw["units"].arm.to_numpy()
    cap = np.quantile(expected["capped"][arms >= 0], 0.9)  # linear: as PERCENTILE_CONT
    expected["capped"] = expected["capped"].clip(upper=cap)
    for key, values in expected.items():
        for arm, name in enumerate(("control", "treatment")):
            got = stat(snap, key, name)
            mine = values[arms == arm].to_numpy(dtype=float)
            assert got["n"] == mine.size, key
            assert got["sum"] == pytest.approx(mine.sum(), rel=1e-9), key
            assert got["sum_squares"] == pytest.approx((mine**2).sum(), rel=1e-9), key


def test_quantiles_match_order_statistics(tmp_path: Path, raw: dict[str, pd.DataFrame]) -> None:
    metrics = [
        ("metrics", {"key": "median_spend", "type": "quantile", "quantile": 0.5,
                     "numerator": {"fact_table": "orders", "column": "amount"}}),
        ("metrics", {"key": "p90_order", "type": "quantile", "quantile": 0.9,
                     "quantile_level": "event",
                     "numerator": {"fact_table": "orders", "column": "amount"}}),
    ]  # fmt: skip
    snap = run(tmp_path, [*metrics, ("experiments", secondary("median_spend", "p90_order"))])
    o = raw["orders"]
    post = o[o.timestamp >= o["at"]]
    spend = post.groupby("user_id")["value"].sum()
    arm_of = raw["units"].arm
    for arm, name in enumerate(("control", "treatment")):
        unit_values = spend[arm_of.reindex(spend.index).to_numpy() == arm].to_numpy()
        want = stats.quantile_stats_from_values(unit_values, 0.5)
        got = stat(snap, "median_spend", name)
        assert (got["n"], got["quantile"]) == (want.n, want.quantile)
        assert (got["quantile_lower"], got["quantile_upper"]) == (
            want.quantile_lower, want.quantile_upper,
        )  # fmt: skip
        events = post[post["arm"] == arm]["value"].to_numpy()
        iid = stats.quantile_stats_from_values(events, 0.9)
        got = stat(snap, "p90_order", name)
        assert got["quantile"] == iid.quantile and got["n_star"] == iid.n
        # Units with several orders make events correlated: fewer effective observations.
        assert 0 < got["n"] <= iid.n
    result = next(m for m in snap.results if m.metric == "p90_order").variations[1]
    assert result.error is None and result.ci_low is not None


def test_activation_segment_and_exposure_sql(tmp_path: Path, raw: dict[str, pd.DataFrame]) -> None:
    custom = [
        ("metrics", {"key": "viewed", "numerator": {"fact_table": "views"}}),
        ("segments", {"key": "even", "datasource": "warehouse",
                      "sql": "SELECT user_id FROM identities "
                             "WHERE CAST(SUBSTRING(user_id, 2) AS INTEGER) % 2 = 0"}),
    ]  # fmt: skip
    body = secondary("revenue", segment="even")
    body["metrics"]["activation"] = "viewed"
    snap = run(tmp_path, [*custom, ("experiments", body)])
    units = raw["units"]
    even = units.index.str[1:].astype(int) % 2 == 0
    views = raw["events"][raw["events"].name == "page_view"]
    viewers = set("u" + views.anonymous_id.str[1:])
    active = units.index.isin(list(viewers))
    for arm, name in enumerate(("control", "treatment")):
        expected = int(((units.arm == arm) & even & active).sum())
        assert snap.health.units[name] == expected
        assert 0 < expected < int((units.arm == arm).sum()) / 2 + 50

    source = next(b for c, b in registry_objects("duckdb") if c == "data-sources")
    source["exposure_sql"] = (
        "SELECT hash_value AS user_id, timestamp, experiment_key, variation_id, "
        "CASE WHEN hash_value < 'u5' THEN 'ios' ELSE 'web' END AS platform FROM exposures"
    )
    body = secondary("revenue", dimensions=["platform"])
    snap = run(tmp_path / "custom", [("data-sources", source), ("experiments", body)])
    assert sorted(s.value for s in snap.dimensions) == ["ios", "web"]
    assert sum(snap.health.units.values()) == len(units)


def test_corrections_adjust_p_values(tmp_path: Path) -> None:
    plain = run(tmp_path / "plain", [])
    holm = run(tmp_path / "holm", [], correction="holm")
    raw_p = [v.p_value for m in plain.results for v in m.variations[1:] if v.p_value is not None]
    adjusted = [v.p_value for m in holm.results for v in m.variations[1:] if v.p_value is not None]
    valid = np.ones(len(raw_p), dtype=bool)
    want = stats.holm_bonferroni(np.array(raw_p), valid)
    assert adjusted == pytest.approx(list(want))
    assert any(a > r for a, r in zip(adjusted, raw_p, strict=True))
