"""Keyword matching: case-insensitive, whole words, pure."""

import re
from functools import lru_cache


@lru_cache(maxsize=4096)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    # Whole word: no letter, digit or underscore directly before or after the keyword.
    return re.compile(r"(?<!\w)" + re.escape(keyword.strip()) + r"(?!\w)", re.IGNORECASE)


def keywords_match(*, keywords: list[str], text: str) -> bool:
    """An empty keyword list matches every text."""
    if not keywords:
        return True
    return any(_keyword_pattern(keyword).search(text) for keyword in keywords if keyword.strip())
