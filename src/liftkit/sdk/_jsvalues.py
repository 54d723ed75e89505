"""JavaScript value semantics for JSON data.

GrowthBook's reference SDK is written in JavaScript and the specification's expected results
follow JS coercion rules (``"8" > 5`` is true, ``null`` compares as 0, ``1 === 1.0``). These
helpers reproduce exactly those rules for the JSON types, so conditions agree across languages.
"""

from __future__ import annotations

import math
import re
from typing import Any

NAN = math.nan


def js_type(value: Any) -> str:
    """The type name the ``$type`` operator compares against."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def number_to_string(x: float) -> str:
    """``String(number)`` in JS: integers without ``.0``, shortest round-trip digits."""
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) < 10**21:
        return str(x)
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    if "e" not in text:
        return text
    mantissa, exp = text.split("e")
    exponent = int(exp)
    if -7 < exponent < 21:  # repr switched to exponent form earlier than JS does
        return format(x, "f").rstrip("0").rstrip(".")
    return f"{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"


def to_string(value: Any) -> str:
    """``value + ""`` in JS."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_to_string(value)
    if isinstance(value, list):
        return ",".join("" if v is None else to_string(v) for v in value)
    return "[object Object]"


_NUMERIC = re.compile(
    r"^[+-]?(?:Infinity|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+"
    r"|0[bB][01]+|0[oO][0-7]+)$"
)


def to_number(value: Any) -> float:
    """``Number(value)`` in JS (NaN where JS gives NaN)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if value is None:
        return 0.0
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        if not _NUMERIC.match(text):
            return NAN
        lower = text.lower()
        if lower[:2] in ("0x", "0b", "0o"):
            return float(int(text, 0))
        if lower.lstrip("+-") == "infinity":
            return -math.inf if text.startswith("-") else math.inf
        return float(text)
    if isinstance(value, list):
        return to_number(to_string(value))
    return NAN


def _primitive(value: Any) -> Any:
    """ToPrimitive for arrays and objects (both become strings)."""
    if isinstance(value, (list, dict)):
        return to_string(value)
    return value


def compare(a: Any, b: Any) -> int | None:
    """-1, 0 or 1 as JS's relational operators would order a and b; None when unordered."""
    a, b = _primitive(a), _primitive(b)
    if isinstance(a, str) and isinstance(b, str):
        if not (a.isascii() and b.isascii()):
            a16 = a.encode("utf-16-be", "surrogatepass")
            b16 = b.encode("utf-16-be", "surrogatepass")
            return (a16 > b16) - (a16 < b16)
        return (a > b) - (a < b)
    x, y = to_number(a), to_number(b)
    if math.isnan(x) or math.isnan(y):
        return None
    return (x > y) - (x < y)


def strict_equal(a: Any, b: Any) -> bool:
    """``a === b``: same type and value; arrays and objects are never identical."""
    ta = js_type(a)
    if ta != js_type(b) or ta in ("array", "object"):
        return False
    return bool(a == b)


def json_equal(a: Any, b: Any) -> bool:
    """``JSON.stringify(a) === JSON.stringify(b)`` (key order matters, as it does in JS)."""
    ta = js_type(a)
    if ta != js_type(b):
        # JSON.stringify writes NaN/Infinity as null.
        return _json_null(a) and _json_null(b)
    if ta == "array":
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta == "object":
        return list(a) == list(b) and all(json_equal(a[k], b[k]) for k in a)
    if ta == "number" and not (math.isfinite(a) and math.isfinite(b)):
        return _json_null(a) and _json_null(b)
    return bool(a == b)


def _json_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def truthy(value: Any) -> bool:
    """JS truthiness: false, 0, NaN, "", null are falsy; every array and object is truthy."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True
