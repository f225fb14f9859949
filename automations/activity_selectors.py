"""Reads of the activity log for the admin, the API and the operations page."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Max, Sum
from django.utils import timezone

from automations.models import ActivityEntry, ActivityStatus, AutomationDailyCount, Miss
from automations.selectors import AUTOMATION_TYPE_FOR_KIND
from instabot.ids import PrimaryKey
from webhooks.events import EventKind

# "Fired": the automation answered an event (its DM or private reply went out), counted per UTC day.
FIRED_WINDOW_DAYS = 7


@dataclass(frozen=True, slots=True)
class FiringCounts:
    today: int = 0
    last_7_days: int = 0
    total: int = 0
    last_fired_at: datetime | None = None


NEVER_FIRED = FiringCounts()


def automation_firing_counts(
    *, automation_ids: Iterable[PrimaryKey], now: datetime | None = None
) -> dict[PrimaryKey, FiringCounts]:
    """Fired today, in the last 7 days (today included) and in all, and when last, per automation.

    Two indexed queries over the daily counts, whatever the number of automations; an automation
    that never fired is missing from the answer (use NEVER_FIRED).
    """
    ids = list(automation_ids)
    if not ids:
        return {}
    today = (now or timezone.now()).astimezone(UTC).date()
    counts = AutomationDailyCount.objects.filter(automation_id__in=ids).order_by()
    totals = counts.values("automation_id").annotate(total=Sum("fired"), last=Max("last_fired_at"))
    recent: dict[PrimaryKey, list[int]] = {}
    since = today - timedelta(days=FIRED_WINDOW_DAYS - 1)
    for automation_id, day, fired in counts.filter(day__gte=since).values_list("automation_id", "day", "fired"):
        week_today = recent.setdefault(automation_id, [0, 0])
        week_today[0] += fired
        if day == today:
            week_today[1] += fired
    answer = {}
    for row in totals:
        week, day_count = recent.get(row["automation_id"], [0, 0])
        answer[row["automation_id"]] = FiringCounts(
            today=day_count, last_7_days=week, total=int(row["total"] or 0), last_fired_at=row["last"]
        )
    return answer


def activity_problem_counts(*, since: datetime) -> dict[str, int]:
    """Failed and uncertain sends since `since`, for the operations page (indexed on status, time).

    Sent rows are not counted here: at thousands a minute that count would be the slow part of the page.
    """
    statuses = [ActivityStatus.FAILED, ActivityStatus.UNCERTAIN]
    return {str(status): ActivityEntry.objects.filter(status=status, sent_at__gte=since).count() for status in statuses}


# Words too common to be worth a keyword: a keyword matches anywhere in a message.
_COMMON_WORDS = frozenset(
    "a an and are as at be but by can could do does for from get got have hello hey hi how i if in is it "
    "me my of on or please so that the there this to u want was we what when where which who why will "
    "with would you your".split()
)
MAX_PREFILLED_KEYWORDS = 8


def miss_keywords(*, text: str) -> list[str]:
    """The distinct words of a missed message worth matching on, in order, lowercased."""
    keywords: list[str] = []
    for word in re.findall(r"\w+", text.lower()):
        if len(word) > 1 and word not in _COMMON_WORDS and not word.isdigit() and word not in keywords:
            keywords.append(word)
    return keywords[:MAX_PREFILLED_KEYWORDS]


def miss_automation_initial(*, miss: Miss) -> dict[str, str]:
    """What a new automation made from a missed message starts with (the admin's add form)."""
    text = " ".join(miss.text.split())
    return {
        "workspace": str(miss.workspace_id),
        "type": str(AUTOMATION_TYPE_FOR_KIND[EventKind(miss.kind)]),
        "name": f"Reply to: {text[:60]}" if text else f"Reply to {miss.kind}",
        "keywords": ", ".join(miss_keywords(text=miss.text)),
    }
