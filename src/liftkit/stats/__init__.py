"""liftkit.stats: the statistics engine (pure numerics over sufficient statistics).

Everything here takes per-variation sufficient statistics, as a warehouse query returns them,
and returns frozen results; nothing does I/O or imports the rest of liftkit. Each function has
a scalar form and a vectorised ``*_many`` form that analyses every metric × variation ×
dimension in one call. See docs/stats.md for the formulas, references and validation.
"""

from liftkit.stats._engine import compare, compare_many
from liftkit.stats._errors import MESSAGES as ERROR_MESSAGES
from liftkit.stats._results import (
    ComparisonResult,
    ComparisonResults,
    GuardrailResult,
    GuardrailResults,
)
from liftkit.stats._sufficient import (
    CupedMeanStats,
    CupedRatioStats,
    MeanStats,
    ProportionStats,
    QuantileStats,
    RatioStats,
    SufficientStats,
    stack,
)
from liftkit.stats.bandits import thompson_weights
from liftkit.stats.bayesian import GaussianPrior, learn_prior
from liftkit.stats.corrections import benjamini_hochberg, holm_bonferroni
from liftkit.stats.guardrails import non_inferiority, non_inferiority_many
from liftkit.stats.outliers import cap, winsorize
from liftkit.stats.power import (
    expected_duration,
    mid_experiment_power,
    minimum_detectable_effect,
    power,
    sample_size,
)
from liftkit.stats.quantile import quantile_stats_from_values
from liftkit.stats.srm import SrmResult, SrmResults, srm_check, srm_check_many

__all__ = [
    "ERROR_MESSAGES",
    "ComparisonResult",
    "ComparisonResults",
    "CupedMeanStats",
    "CupedRatioStats",
    "GaussianPrior",
    "GuardrailResult",
    "GuardrailResults",
    "MeanStats",
    "ProportionStats",
    "QuantileStats",
    "RatioStats",
    "SrmResult",
    "SrmResults",
    "SufficientStats",
    "benjamini_hochberg",
    "cap",
    "compare",
    "compare_many",
    "expected_duration",
    "holm_bonferroni",
    "learn_prior",
    "mid_experiment_power",
    "minimum_detectable_effect",
    "non_inferiority",
    "non_inferiority_many",
    "power",
    "quantile_stats_from_values",
    "sample_size",
    "srm_check",
    "srm_check_many",
    "stack",
    "thompson_weights",
    "winsorize",
]
