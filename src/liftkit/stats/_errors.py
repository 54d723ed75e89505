"""Why a comparison could not be computed: stable codes and the messages results carry.

Degenerate data never raises and never yields NaN; the result carries one of these messages in
``error`` and the uninformative values documented on :class:`liftkit.stats.ComparisonResult`.
When several apply, the lowest code (the most basic problem) is reported.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

OK = 0
NO_UNITS = 1
TOO_FEW_UNITS = 2
ZERO_DENOMINATOR = 3
QUANTILE_TOO_FEW_UNITS = 4
ZERO_BASELINE = 5
ZERO_VARIANCE = 6
NOT_FINITE = 7

MESSAGES: dict[int, str | None] = {
    OK: None,
    NO_UNITS: "no units in control or treatment",
    TOO_FEW_UNITS: "fewer than 2 units in control or treatment: variance cannot be estimated",
    ZERO_DENOMINATOR: "ratio denominator is zero in control or treatment",
    QUANTILE_TOO_FEW_UNITS: "too few units for a normal-approximation interval of this quantile",
    ZERO_BASELINE: "control mean is zero: a relative effect (or a relative prior) is undefined",
    ZERO_VARIANCE: "zero variance in control or treatment: the effect has no standard error",
    NOT_FINITE: "the estimate overflowed: the input sums are too large to combine",
}

_MESSAGE_TABLE = np.array([MESSAGES[i] for i in range(len(MESSAGES))], dtype=object)

CodeArray = npt.NDArray[np.int8]


def from_masks(
    issues: list[tuple[int, npt.NDArray[np.bool_]]], shape: tuple[int, ...]
) -> CodeArray:
    """Per element, the lowest code whose mask holds (``OK`` where none does)."""
    ordered = sorted(issues, key=lambda issue: issue[0])
    picked = np.select(
        [np.broadcast_to(mask, shape) for _, mask in ordered],
        [np.int8(code) for code, _ in ordered],
        default=np.int8(OK),
    )
    return np.asarray(picked, dtype=np.int8)


def messages(codes: CodeArray) -> npt.NDArray[np.object_]:
    """Map codes to messages (``None`` where the comparison is valid)."""
    out: npt.NDArray[np.object_] = _MESSAGE_TABLE[codes]
    return out
