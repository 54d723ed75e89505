"""Stored expected values (tests/fixtures/stats/regression.json) guard against drift.

The fixture's own "note" says how the numbers were produced: by liftkit, each checked against
gbstats / scipy / statsmodels on the same input before being written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from liftkit import stats

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "stats" / "regression.json").read_text())
SETTINGS: dict[str, dict[str, Any]] = {
    "fixed-relative": {"difference": "relative"},
    "fixed-absolute": {"difference": "absolute"},
    "sequential-relative": {"difference": "relative", "sequential_tuning": 3000.0},
    "bayesian-flat": {"engine": "bayesian", "difference": "relative"},
    "bayesian-proper": {
        "engine": "bayesian",
        "difference": "absolute",
        "prior": stats.GaussianPrior(0.0, 0.05**2),
    },
}


@pytest.mark.parametrize(
    "record", FIXTURE["comparisons"], ids=lambda r: f"{r['case']}-{r['setting']}"
)
def test_comparisons_match_stored_values(record: dict[str, Any]) -> None:
    cls = getattr(stats, record["type"])
    res = stats.compare(
        cls(**record["control"]), cls(**record["treatment"]), **SETTINGS[record["setting"]]
    )
    for field, expected in record["expected"].items():
        assert np.isclose(getattr(res, field), expected, rtol=1e-9, atol=1e-15), field


def test_srm_and_sample_size_match_stored_values() -> None:
    srm = FIXTURE["srm"]
    assert np.isclose(
        stats.srm_check(srm["counts"], srm["weights"]).p_value, srm["p_value"], rtol=1e-9
    )
    plan = FIXTURE["sample_size"]
    assert (
        stats.sample_size(
            mean=plan["mean"],
            variance=plan["variance"],
            mde=plan["mde"],
            difference=plan["difference"],
        )
        == plan["n_total"]
    )
