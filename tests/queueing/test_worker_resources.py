"""A worker process keeps its database connections to `WORKER_SYNC_THREADS`, whatever `CONCURRENCY` is."""

import threading

import pytest
from django.db import connection

from automations.models import Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI
from queueing.queues import QUEUE_NAMES
from queueing.services import events_enqueue
from tests.support.processes import command_env, run_manage
from webhooks.events import EventKind, InstagramEvent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL backends"),
]


def backends_of_others(database: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        )
        return int(cursor.fetchone()[0])


def test_cache_misses_of_200_jobs_in_flight_use_at_most_the_sync_threads_connections(graph: FakeGraphAPI) -> None:
    graph.state.latency_s = 0.05
    accounts = [str(17841400000100000 + i) for i in range(40)]
    for account in accounts:
        workspace = Workspace.objects.create(name=account, instagram_account_id=account, access_token="tok")
        Automation.objects.create(workspace=workspace, name="any", type="dm", keywords=[], reply_text="hi")
    # Every job's account is new to the cache: each one reads the database.
    events_enqueue(
        events=[
            InstagramEvent(kind=EventKind.DM, account_id=account, event_id=f"m{i}", sender_id=f"u{i}", text="hi")
            for i, account in enumerate(accounts * 5)
        ]
    )
    database = connection.settings_dict["NAME"]
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        # Connections that were there before the worker (this test's own) are not the worker's.
        baseline = backends_of_others(database)
        started.set()
        while not stop.wait(0.01):
            peak = max(peak, backends_of_others(database) - baseline)

    started = threading.Event()
    sampler = threading.Thread(target=sample)
    sampler.start()
    started.wait(timeout=5)
    try:
        result = run_manage(
            "rqworker", *QUEUE_NAMES, "--burst", env=command_env(CONCURRENCY="200", WORKER_SYNC_THREADS="3")
        )
    finally:
        stop.set()
        sampler.join(timeout=5)
    print(f"\nworker database connections at most: {peak} (WORKER_SYNC_THREADS=3, CONCURRENCY=200)")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(graph.calls()) == 200
    assert 1 <= peak <= 3
