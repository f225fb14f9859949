"""Redis Sentinel: every kind of client follows a failover, and REDIS_MIN_REPLICAS_ACK waits for replicas.

A real master, replica and three sentinels (tests/support/sentinel.py). The clients are Instabot's own,
built from settings as in production: the shared client (intake, counters, the fallback relay), the
asyncio pool of the worker engine, django-rq's connection (`rqworker`, /admin/rq/) and django-redis's cache.
"""

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection
from django_redis.cache import RedisCache
from django_rq.connection_utils import get_redis_connection

from automations.context import EventContext, async_redis_client
from automations.delivery import ACTION_DM, SendDeferred, send_once
from automations.graph import AsyncGraphClient, GraphResponse, graph_client_config
from automations.ledger import ledger_key
from instabot.redis import get_redis, redis_target
from instabot.redis_config import cache_config, rq_queue_config
from queueing.fallback import fallback_relay
from queueing.models import FallbackEvent
from queueing.services import events_enqueue
from tests.conftest import ACCOUNT_ID
from tests.support.faults import dm_body
from tests.support.sentinel import MASTER_NAME, SentinelCluster
from tests.support.stack import ManagedProcess, stack_env, wait_for
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind, InstagramEvent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql" and not os.environ.get("FAULTS_ON_EVERY_DATABASE"),
        reason="the fault suite runs once, on PostgreSQL (FAULTS_ON_EVERY_DATABASE=1 runs it on any database)",
    ),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(tmp_path_factory.mktemp("sentinel"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def on_sentinel(cluster: SentinelCluster, settings: Any) -> SentinelCluster:
    """Instabot, in this process, pointed at the cluster through its sentinels."""
    settings.REDIS_SENTINELS = [("127.0.0.1", port) for port in cluster.sentinel_ports]
    settings.REDIS_SENTINEL_MASTER = MASTER_NAME
    settings.REDIS_URL = "redis://127.0.0.1/0"
    settings.REDIS_REPLICAS_ACK_TIMEOUT_SECONDS = 0.2
    return cluster


def port_of_master() -> int:
    return int(get_redis().info("server")["tcp_port"])


def eventually(action: Callable[[], Any], *, timeout: float) -> tuple[Any, int]:
    """`action()` until it does not raise a Redis error: its result and how many attempts failed."""
    deadline, failures = time.monotonic() + timeout, 0
    while True:
        try:
            return action(), failures
        except redis.RedisError:
            failures += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_every_client_follows_a_failover_without_a_restart(on_sentinel: SentinelCluster) -> None:
    target = redis_target()
    shared = get_redis()
    queues = get_redis_connection(
        rq_queue_config(target, default_timeout=60, socket_connect_timeout=0.5, socket_timeout=2)
    )
    cache_settings = cache_config(target, key_prefix="sentinel-test", socket_connect_timeout=0.5, socket_timeout=2)
    cache = RedisCache(cache_settings["LOCATION"], cache_settings)
    loop = asyncio.new_event_loop()
    engine = loop.run_until_complete(_engine_context())
    tag = uuid.uuid4().hex

    def write_all(suffix: str) -> dict[str, int]:
        failures = {}
        _, failures["shared"] = eventually(lambda: shared.set(f"{tag}:shared:{suffix}", 1), timeout=15)
        _, failures["rq"] = eventually(lambda: queues.set(f"{tag}:rq:{suffix}", 1), timeout=15)
        _, failures["cache"] = eventually(lambda: cache.set(f"{tag}:cache:{suffix}", 1), timeout=15)
        _, failures["engine"] = eventually(
            lambda: loop.run_until_complete(engine.redis_command("SET", f"{tag}:engine:{suffix}", 1)), timeout=15
        )
        return failures

    try:
        old = port_of_master()
        write_all("before")
        on_sentinel.kill(old)
        promotion = on_sentinel.wait_for_promotion(old=old, timeout=30)
        failures = write_all("after")
        new = on_sentinel.master_port()
        assert new is not None
        on_sentinel.restart_as_replica(old, of=new)  # the next tests want a replica again
        assert on_sentinel.rejoined(old, timeout=30), "the old master did not rejoin"
        written = redis.Redis(port=new).keys(f"{tag}:*") + redis.Redis(port=new).keys(f"*{tag}:cache:*")
    finally:
        loop.run_until_complete(engine.close())
        loop.close()
    print(f"\nSENTINEL failover: master {old} -> {new} in {promotion:.1f} s; failed attempts per client {failures}")
    assert new != old
    names = {key.decode().split(":")[-2] for key in written if b":after" in key}
    assert names == {"shared", "rq", "cache", "engine"}, written


async def _engine_context() -> EventContext:
    return EventContext(
        redis=async_redis_client(max_connections=4, retry_seconds=15),
        graph=AsyncGraphClient(graph_client_config(pool_size=1)),
        redis_retry_seconds=15,
    )


def dm_event(i: int) -> InstagramEvent:
    return InstagramEvent(kind=EventKind.DM, account_id=ACCOUNT_ID, event_id=f"s.{i}", sender_id=f"u{i}", text="hi")


@pytest.mark.django_db(transaction=True)
def test_intake_waits_for_the_replicas_and_falls_back_when_too_few_acknowledge(
    on_sentinel: SentinelCluster, settings: Any, client: Any
) -> None:
    settings.REDIS_MIN_REPLICAS_ACK = 1  # the cluster's one replica
    assert len(events_enqueue(events=[dm_event(1)])) == 1
    settings.REDIS_MIN_REPLICAS_ACK = 2  # more than there are: WAIT times out
    started = time.monotonic()
    with pytest.raises(redis.RedisError, match="not confirmed on 2 replica"):
        events_enqueue(events=[dm_event(2)])
    waited = time.monotonic() - started
    response = post_webhook(client, dm_body(3))
    assert response.status_code == 200
    # Queued, but not confirmed: the database fallback store keeps it too (the ledger answers it once).
    assert list(FallbackEvent.objects.values_list("event_id", flat=True)) == ["m.3"]
    assert 0.2 <= waited < 1.5


@pytest.mark.django_db(transaction=True)
def test_fallback_rows_stay_waiting_until_their_jobs_are_on_the_replicas(
    on_sentinel: SentinelCluster, settings: Any
) -> None:
    from queueing.fallback import fallback_events_store

    fallback_events_store(events=[dm_event(4), dm_event(5)])
    settings.REDIS_MIN_REPLICAS_ACK = 2
    fallback_relay()
    assert FallbackEvent.objects.filter(relayed_at__isnull=True).count() == 2
    settings.REDIS_MIN_REPLICAS_ACK = 1
    result = fallback_relay()
    assert FallbackEvent.objects.filter(relayed_at__isnull=True).count() == 0
    # Their jobs were queued by the first round; the second only confirmed them, never queued them again.
    assert (result.relayed, result.already_handed_over) == (0, 2)


def test_a_send_waits_until_its_ledger_claim_is_on_the_replicas(on_sentinel: SentinelCluster, settings: Any) -> None:
    sends = []

    async def send() -> GraphResponse:
        sends.append(1)
        return GraphResponse(body={"message_id": "mid.1"})

    async def attempt(event_id: str) -> Any:
        context = await _engine_context()
        try:
            return await send_once(
                context=context, account_id=ACCOUNT_ID, event_id=event_id, action=ACTION_DM, send=send
            )
        finally:
            await context.close()

    settings.REDIS_MIN_REPLICAS_ACK = 2
    with pytest.raises(SendDeferred, match="no Redis replica"):
        asyncio.run(attempt("e.1"))
    assert sends == []
    assert get_redis().get(ledger_key(account_id=ACCOUNT_ID, event_id="e.1", action=ACTION_DM)) is None
    settings.REDIS_MIN_REPLICAS_ACK = 1
    assert str(asyncio.run(attempt("e.1"))) == "sent"
    assert sends == [1]


@pytest.mark.django_db(transaction=True)
def test_a_worker_started_while_sentinel_names_no_master_waits_for_one(
    tmp_path: Path, cluster: SentinelCluster, settings: Any
) -> None:
    port = cluster.spare_port
    cluster.monitor("later", port)  # a master that is not running yet
    settings.REDIS_URL = "redis://127.0.0.1/0"
    env = stack_env(redis_url="redis://127.0.0.1/0", **cluster.env())
    env["REDIS_SENTINEL_MASTER"] = "later"
    worker = ManagedProcess(
        [sys.executable, "manage.py", "rqworker", "--burst", "high", "default", "low"], env, tmp_path / "worker.log"
    )
    try:
        waiting = wait_for(lambda: "waiting for Redis" in worker.output(), timeout=30)
        cluster.start_data_node(port)
        exited = wait_for(lambda: worker.process.poll() is not None, timeout=30)
    finally:
        worker.stop()
        cluster.forget("later")
        cluster.kill(port)
    print(f"\nSENTINEL worker started before its master: waited={waiting} exit={worker.process.returncode}")
    assert waiting, worker.output()[-3000:]
    assert exited and worker.process.returncode == 0, worker.output()[-3000:]
