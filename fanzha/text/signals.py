"""Dense features from recognised indicators, in a fixed order the model was trained with."""

from __future__ import annotations

import math
from collections.abc import Sequence

from fanzha.text.result import Indicator

INDICATOR_FEATURES: tuple[str, ...] = (
    "ind:phone_mobile",
    "ind:phone_virtual",
    "ind:phone_foreign",
    "ind:phone_service",
    "ind:url",
    "ind:url_lookalike",
    "ind:url_ip",
    "ind:url_short",
    "ind:url_risky_tld",
    "ind:bank_card",
    "ind:id_card",
    "ind:qq",
    "ind:wechat",
    "ind:telegram",
    "ind:app_remote",
    "ind:app_meeting",
    "ind:app_other",
    "ind:amount",
    "ind:amount_large",
    "ind:wallet",
    "ind:vcode_request",
    "ind:ip",
)
_INDEX = {name: i for i, name in enumerate(INDICATOR_FEATURES)}


def _names(ind: Indicator) -> list[str]:
    a = ind.attributes
    kind = ind.kind
    if kind == "phone":
        if a.get("service"):
            return ["ind:phone_service"]
        if a.get("virtual"):
            return ["ind:phone_virtual"]
        if a.get("region") not in (None, "CN"):
            return ["ind:phone_foreign"]
        return ["ind:phone_mobile"]
    if kind == "url":
        out = ["ind:url"]
        if a.get("lookalike_of"):
            out.append("ind:url_lookalike")
        if a.get("is_ip"):
            out.append("ind:url_ip")
        if a.get("is_short_link"):
            out.append("ind:url_short")
        if a.get("risky_tld"):
            out.append("ind:url_risky_tld")
        return out
    if kind == "app":
        category = a.get("category")
        if category == "remote_control":
            return ["ind:app_remote"]
        if category == "meeting":
            return ["ind:app_meeting"]
        return ["ind:app_other"]
    if kind == "amount":
        try:
            large = float(ind.value) >= 10_000
        except ValueError:
            large = False
        return ["ind:amount", "ind:amount_large"] if large else ["ind:amount"]
    if kind == "verification_code_request":
        return ["ind:vcode_request"]
    name = f"ind:{kind}"
    return [name] if name in _INDEX else []


def indicator_features(indicators: Sequence[Indicator]) -> list[float]:
    """Counts per indicator feature, compressed with log1p so one long list cannot dominate."""
    vec = [0.0] * len(INDICATOR_FEATURES)
    if not indicators:  # half of all messages: skip the counting and the per-feature pass
        return vec
    counts: dict[int, int] = {}
    for ind in indicators:
        for name in _names(ind):
            i = _INDEX[name]
            counts[i] = counts.get(i, 0) + 1
    for i, c in counts.items():
        vec[i] = math.log1p(c)
    return vec
