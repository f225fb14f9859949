"""RQ job of the daily token refresh (queued by instagram/maintenance.py). Safe to run twice: a token
refreshed less than 24 hours ago is not due again."""

import logging
from collections import Counter

from instagram.tokens import workspace_tokens_refresh_due

logger = logging.getLogger(__name__)


def tokens_refresh_job() -> str:
    outcomes = workspace_tokens_refresh_due()
    counts = Counter(str(outcome.result) for outcome in outcomes)
    summary = ", ".join(f"{result} {count}" for result, count in sorted(counts.items())) or "nothing due"
    logger.info("daily token refresh: %s", summary)
    return summary
