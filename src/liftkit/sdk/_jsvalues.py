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
    """``String(number)`` in JS (ECMAScript Number::toString).

    JS numbers are doubles, so integers beyond 2**53 round first. The digits are the shortest
    that round-trip (Python's ``repr`` gives the same ones); JS then lays them out in plain
    notation for decimal exponents from -6 to 21 and in ``1.5e-7`` / ``1e+21`` form otherwise.
    """
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) < 2**53:
        return str(x)
    try:
        x = float(x)
    except OverflowError:
        return "Infinity" if x > 0 else "-Infinity"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + number_to_string(-x)
    mantissa, _, exp = repr(x).partition("e")
    whole, _, fraction = mantissa.partition(".")
    fraction = fraction.rstrip("0") if fraction != "0" else ""
    stripped = (whole + fraction).lstrip("0")
    digits = stripped.rstrip("0") or "0"
    # x = 0.d1d2…dk × 10**n
    n = int(exp or 0) + len(whole) - (len(whole + fraction) - len(stripped))
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{'+' if n > 0 else '-'}{abs(n - 1)}"


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
        return js_key_order(a) == js_key_order(b) and all(json_equal(a[k], b[k]) for k in a)
    if ta == "number" and not (math.isfinite(a) and math.isfinite(b)):
        return _json_null(a) and _json_null(b)
    return bool(a == b)


def _is_index_key(key: str) -> bool:
    return (
        key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1
    )


def js_key_order(obj: dict[str, Any]) -> list[str]:
    """An object's keys in JS property order: integer-like keys ascending, then the rest."""
    keys = list(obj)
    indices = sorted((k for k in keys if _is_index_key(k)), key=int)
    return indices + [k for k in keys if not _is_index_key(k)]


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
