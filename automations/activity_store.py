"""From the Redis list the recorders fill (automations/activity.py) into the database, in batches.

`activity_drain` takes entries from `{prefix}:activity:entries` and writes them with `bulk_create`.
Each batch is moved atomically (one Lua call) into a list of its own, `{prefix}:activity:draining:<token>`,
and deleted from there only once the database has it: two drains never take the same entries, and a
drain that dies or whose database fails leaves its batch to be put back (at once on a database error,
after DRAIN_LEASE_SECONDS when the process died). A batch stored twice that way is stored once: every
entry carries a `record_id` and rows whose id exists are skipped.

Fired counts per automation and day (`AutomationDailyCount`) are added in the same transaction as the
rows (on SQL; MongoDB has no multi-document transactions here), only for rows actually inserted.
"""

import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from automations.models import (
    ActivityAction,
    ActivityEntry,
    ActivityStatus,
    Automation,
    AutomationDailyCount,
    Miss,
    Workspace,
)
from instabot.ids import PrimaryKey, pk_from_string
from instabot.redis import get_redis, key

logger = logging.getLogger(__name__)

# Entry types in the list: one list carries both, so a recorder flushes in one command.
ACTIVITY = "activity"
MISS = "miss"

# The actions that mean "the automation answered this event" (one per event it fired on).
FIRING_ACTIONS = frozenset({ActivityAction.DM, ActivityAction.PRIVATE_REPLY})

# Entries one database round of a drain writes.
DRAIN_BATCH_SIZE = 1000
# A batch taken by a drain that has not finished after this long is put back for another drain.
DRAIN_LEASE_SECONDS = 300


def entries_key() -> str:
    return key("activity", "entries")


def _draining_key(token: str) -> str:
    return key("activity", "draining", token)


def _draining_index_key() -> str:
    return key("activity", "draining")


def new_record_id() -> str:
    return uuid.uuid4().hex


# KEYS: the entries list, this drain's own list, the index of drains in progress. ARGV: how many, now, token.
# Moves the first entries into the drain's own list and returns them.
_TAKE_LUA = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return items
"""

# KEYS: the entries list, a drain's own list, the index. ARGV: the drain's token.
# Puts a drain's batch back at the end of the entries list; a second call finds nothing to put back.
_PUT_BACK_LUA = """
local items = redis.call('LRANGE', KEYS[2], 0, -1)
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(items, i, math.min(i + 999, #items)))
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return #items
"""


@dataclass
class StoreResult:
    activities: int = 0
    misses: int = 0
    # Already stored (a batch drained twice), unreadable, or of a workspace deleted meanwhile.
    skipped: int = 0

    def add(self, other: "StoreResult") -> None:
        self.activities += other.activities
        self.misses += other.misses
        self.skipped += other.skipped


def activity_drain(*, limit: int = 10_000) -> StoreResult:
    """Move up to `limit` entries from Redis into the database; safe to run in many processes at once.

    Raises what Redis or the database raised; the entries of a failed batch are back in the list.
    """
    client = get_redis()
    _put_back_expired(client)
    result = StoreResult()
    moved = 0
    while moved < limit:
        token = uuid.uuid4().hex
        keys = [entries_key(), _draining_key(token), _draining_index_key()]
        count = min(DRAIN_BATCH_SIZE, limit - moved)
        raw: list[bytes] = client.eval(_TAKE_LUA, 3, *keys, count, time.time(), token)
        if not raw:
            break
        try:
            result.add(activity_entries_store(entries=_decode(raw)))
        except BaseException:
            client.eval(_PUT_BACK_LUA, 3, *keys, token)
            raise
        with client.pipeline() as pipe:
            pipe.delete(keys[1])
            pipe.zrem(keys[2], token)
            pipe.execute()
        moved += len(raw)
    return result


# --- A dedicated drainer (`manage.py drain_activity --forever`) ---------------------------------------

# How long a drainer counts as present after its last round: workers take the drain back after that.
DRAINER_PRESENCE_SECONDS = 10

_WITHDRAW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _drainer_key() -> str:
    return key("activity", "drainer")


def activity_drainer_announce(*, name: str) -> None:
    """Say that the process `name` drains the log now, for the next DRAINER_PRESENCE_SECONDS."""
    get_redis().set(_drainer_key(), name, ex=DRAINER_PRESENCE_SECONDS)


def activity_drainer_withdraw(*, name: str) -> None:
    """On a clean stop: workers drain again at once (not after the presence runs out)."""
    get_redis().eval(_WITHDRAW_LUA, 1, _drainer_key(), name)


def activity_drainer_present() -> bool:
    return bool(get_redis().exists(_drainer_key()))


def _put_back_expired(client: Any) -> None:
    """Batches of drains that died (or hang) go back to the list for this one."""
    expired = client.zrangebyscore(_draining_index_key(), "-inf", time.time() - DRAIN_LEASE_SECONDS)
    for raw_token in expired:
        token = raw_token.decode()
        count = client.eval(_PUT_BACK_LUA, 3, entries_key(), _draining_key(token), _draining_index_key(), token)
        if count:
            logger.warning("put back %d activity entries of an unfinished drain", count)


def activity_backlog() -> int:
    """Entries recorded but not yet in the database (waiting in Redis, or being drained now)."""
    client = get_redis()
    waiting = int(client.llen(entries_key()))
    tokens: list[Any] = list(client.zrange(_draining_index_key(), 0, -1))
    with client.pipeline(transaction=False) as pipe:
        for token in tokens:
            pipe.llen(_draining_key(token.decode()))
        draining = sum(int(n) for n in pipe.execute())
    return waiting + draining


def _decode(raw: Iterable[bytes]) -> list[dict[str, Any]]:
    entries = []
    for item in raw:
        try:
            entry = json.loads(item)
        except ValueError:
            logger.error("unreadable activity entry dropped: %r", item[:200])
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _datetime(epoch: Any) -> datetime | None:
    if isinstance(epoch, int | float) and epoch > 0:
        return datetime.fromtimestamp(epoch, tz=UTC)
    return None


def activity_entries_store(*, entries: list[dict[str, Any]]) -> StoreResult:
    """Write recorded entries (as `automations.activity` records them) to the database, each once."""
    result = StoreResult()
    if not entries:
        return result
    workspaces = _existing_pks(Workspace, (e.get("workspace") for e in entries))
    automations = _existing_pks(Automation, (e.get("automation") for e in entries if e.get("type") == ACTIVITY))
    activities: list[dict[str, Any]] = []
    misses: list[dict[str, Any]] = []
    for entry in entries:
        row = _row(entry, workspaces=workspaces, automations=automations)
        if row is not None:
            (misses if entry.get("type") == MISS else activities).append(row)
    activities = _not_stored_yet(ActivityEntry, activities)
    misses = _not_stored_yet(Miss, misses)
    # Writes only: a transaction that read first could not take SQLite's write lock while another
    # drain holds it ("database is locked"). A duplicate stored meanwhile fails the unique record id,
    # and the batch is tried again.
    with transaction.atomic():
        _insert(ActivityEntry, activities)
        _insert(Miss, misses)
        _count_firings(activities)
    result.activities = len(activities)
    result.misses = len(misses)
    result.skipped = len(entries) - result.activities - result.misses
    return result


def _existing_pks(model: type[Workspace] | type[Automation], raw_ids: Iterable[Any]) -> dict[str, PrimaryKey]:
    """{id as recorded: primary key} for the rows that still exist."""
    parsed = {}
    for raw in raw_ids:
        if raw is None or str(raw) in parsed:
            continue
        pk = pk_from_string(model=model, value=str(raw))
        if pk is not None:
            parsed[str(raw)] = pk
    found = set(model.objects.filter(pk__in=list(parsed.values())).values_list("pk", flat=True))
    return {raw: pk for raw, pk in parsed.items() if pk in found}


def _row(
    entry: dict[str, Any], *, workspaces: dict[str, PrimaryKey], automations: dict[str, PrimaryKey]
) -> dict[str, Any] | None:
    """The column values of an entry's row (by attribute name), or None when it cannot be stored.

    Texts are cut to their columns' lengths: one odd entry must not fail its whole batch forever."""
    workspace_id = workspaces.get(str(entry.get("workspace")))
    record_id = entry.get("record_id")
    if workspace_id is None or not isinstance(record_id, str):
        return None  # the workspace was deleted since (its rows would be gone with it)
    received_at = _datetime(entry.get("received_at"))
    try:
        if entry.get("type") == MISS:
            return {
                "record_id": record_id,
                "workspace_id": workspace_id,
                "kind": str(entry["kind"])[:16],
                "event_id": str(entry["event_id"])[:255],
                "sender": str(entry.get("sender", ""))[:64],
                "text": str(entry.get("text", "")),
                "received_at": received_at or _datetime(entry.get("recorded_at")) or datetime.now(tz=UTC),
            }
        if entry.get("type") == ACTIVITY:
            sent_at = _datetime(entry.get("sent_at")) or datetime.now(tz=UTC)
            latency_ms = None
            if received_at is not None:
                latency_ms = max(0, round((sent_at - received_at).total_seconds() * 1000))
            return {
                "record_id": record_id,
                "workspace_id": workspace_id,
                "automation_id": automations.get(str(entry.get("automation"))),
                "kind": str(entry["kind"])[:16],
                "event_id": str(entry["event_id"])[:255],
                "action": str(entry["action"])[:16],
                "recipient": str(entry.get("recipient", ""))[:64],
                "status": str(entry["status"])[:20],
                "graph_message_id": str(entry.get("graph_message_id") or "")[:255],
                "detail": str(entry.get("detail") or "")[:500],
                "received_at": received_at,
                "sent_at": sent_at,
                "latency_ms": latency_ms,
            }
    except KeyError as exc:
        logger.error("activity entry without %s dropped", exc)
    return None


def _not_stored_yet(model: type[ActivityEntry] | type[Miss], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose record id is in neither the database nor earlier in `rows`."""
    stored: set[str] = set()
    ids = [row["record_id"] for row in rows]
    for start in range(0, len(ids), 500):
        stored.update(model.objects.filter(record_id__in=ids[start : start + 500]).values_list("record_id", flat=True))
    fresh = []
    for row in rows:
        if row["record_id"] not in stored:
            stored.add(row["record_id"])
            fresh.append(row)
    return fresh


INSERT_BATCH_SIZE = 500


def _insert(model: type[Any], rows: list[dict[str, Any]]) -> None:
    """`bulk_create`, without model instances on SQL databases: preparing instances field by field
    was most of a drain's CPU (about 0.1 ms a row, in the worker process)."""
    if not rows:
        return
    if connection.vendor not in {"sqlite", "postgresql"}:
        model.objects.bulk_create([model(**row) for row in rows], batch_size=INSERT_BATCH_SIZE)
        return
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608 - names from the model
    moments = [index for index, field in enumerate(fields) if field.get_internal_type() == "DateTimeField"]
    params = []
    for row in rows:
        values = [row[name] for name in names]
        for index in moments:
            values[index] = connection.ops.adapt_datetimefield_value(values[index])
        params.append(values)
    with connection.cursor() as cursor:
        for start in range(0, len(params), INSERT_BATCH_SIZE):
            cursor.executemany(sql, params[start : start + INSERT_BATCH_SIZE])


def _count_firings(rows: list[dict[str, Any]]) -> None:
    fired: dict[tuple[PrimaryKey, date], list[datetime]] = defaultdict(list)
    for row in rows:
        if (
            row["automation_id"] is not None
            and row["status"] == ActivityStatus.SENT
            and row["action"] in FIRING_ACTIONS
        ):
            fired[(row["automation_id"], row["sent_at"].date())].append(row["sent_at"])
    for (automation_id, day), times in fired.items():
        _add_firings(automation_id=automation_id, day=day, count=len(times), last_fired_at=max(times))


def _add_firings(*, automation_id: PrimaryKey, day: date, count: int, last_fired_at: datetime) -> None:
    counts = AutomationDailyCount.objects.filter(automation_id=automation_id, day=day)
    if not counts.update(fired=F("fired") + count):
        try:
            with transaction.atomic():
                AutomationDailyCount.objects.create(
                    automation_id=automation_id, day=day, fired=count, last_fired_at=last_fired_at
                )
            return
        except IntegrityError:  # another drain created the day's row first
            counts.update(fired=F("fired") + count)
    counts.filter(last_fired_at__lt=last_fired_at).update(last_fired_at=last_fired_at)


# --- Retention ------------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    activities: int
    misses: int


def activity_purge(*, now: datetime | None = None) -> PurgeResult:
    """Delete activity and miss rows older than ACTIVITY_RETENTION_DAYS (the daily counts stay)."""
    cutoff = (now or datetime.now(tz=UTC)) - timedelta(days=settings.ACTIVITY_RETENTION_DAYS)
    activities, _ = ActivityEntry.objects.filter(sent_at__lt=cutoff).delete()
    misses, _ = Miss.objects.filter(received_at__lt=cutoff).delete()
    return PurgeResult(activities=activities, misses=misses)


def _purged_today_key(day: date) -> str:
    return key("activity", "purged", day.isoformat())


def activity_purge_if_due() -> PurgeResult | None:
    """Once a day (UTC) across all workers: the first to ask purges, the others get None."""
    client = get_redis()
    marker = _purged_today_key(datetime.now(tz=UTC).date())
    if not client.set(marker, "1", nx=True, ex=2 * 24 * 3600):
        return None
    try:
        result = activity_purge()
    except BaseException:
        client.delete(marker)  # let the next round try again
        raise
    if result.activities or result.misses:
        logger.info("purged %d activity and %d miss row(s) past retention", result.activities, result.misses)
    return result
