"""Rule-derived hard-query tags (the paper's hard types; our data has no human tags, so these are rules)."""

from __future__ import annotations

import re

RULES = {
    "negation": re.compile(r"\b(not|no|non|without|except|excluding|free of)\b|\w-free\b|\bnon-", re.I),
    "alternative": re.compile(r"\b(cheap|cheaper|affordable|budget|alternative|similar to|like|dupe|instead of|vs)\b", re.I),
    "qa": re.compile(r"\?|^(what|which|how|why|where|who|when|can|does|do|is|are|should)\b", re.I),
    "knowledge": re.compile(r"\b(compatible|fits|fit for|for (iphone|samsung|ipad|kids|men|women|baby|dogs?|cats?)|ingredients?|replacement|refill)\b", re.I),
}


def tag_query(query: str) -> list[str]:
    return [tag for tag, pattern in RULES.items() if pattern.search(query)]
