"""The daily token refresh runs from the workers' maintenance, once per deployment however many workers."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import Workspace
from devtools.fake_graph_api import FakeGraphAPI
from instabot.redis import get_redis
from instagram.maintenance import TOKEN_REFRESH_QUEUE, accounts_maintenance_run_if_due, token_refresh_due_key
from queueing.queues import QUEUE_NAMES, get_queue
from tests.conftest import ACCOUNT_ID
from tests.support.processes import command_env, start_manage


def test_many_callers_at_once_queue_one_refresh_a_day() -> None:
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def call() -> None:
        barrier.wait()
        results.append(accounts_maintenance_run_if_due())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(results) == [False] * 7 + [True]
    [job] = get_queue(TOKEN_REFRESH_QUEUE).get_jobs()
    assert job.func_name == "instagram.jobs.tokens_refresh_job"
    ttl = get_redis().ttl(token_refresh_due_key())
    assert 24 * 3600 - 60 < ttl <= 24 * 3600
    assert accounts_maintenance_run_if_due() is False  # later the same day: still nothing
    assert get_queue(TOKEN_REFRESH_QUEUE).count == 1


def test_once_the_day_is_over_the_refresh_is_queued_again() -> None:
    assert accounts_maintenance_run_if_due() is True
    get_redis().delete(token_refresh_due_key())  # as if 24 hours had passed

    assert accounts_maintenance_run_if_due() is True
    assert get_queue(TOKEN_REFRESH_QUEUE).count == 2


def test_an_unreachable_redis_is_logged_not_raised(settings: object) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # type: ignore[attr-defined]

    assert accounts_maintenance_run_if_due() is False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_real_workers_refresh_each_due_token_once(graph: FakeGraphAPI) -> None:
    token = graph.issue_token(user_id=ACCOUNT_ID)
    workspace = Workspace.objects.create(name="Shop", instagram_account_id=ACCOUNT_ID, access_token=token)
    Workspace.objects.filter(pk=workspace.pk).update(token_issued_at=timezone.now() - timedelta(days=2))

    # Both start at once; each runs its maintenance on start, then works until the queues are empty.
    workers = [start_manage("rqworker", *QUEUE_NAMES, "--burst", env=command_env()) for _ in range(2)]
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    [refresh] = graph.requests("refresh_access_token")
    assert refresh.token == token
    refreshed = Workspace.objects.get(pk=workspace.pk)
    assert refreshed.access_token != token and graph.token_account(refreshed.access_token) == ACCOUNT_ID
    assert all(token not in output and refreshed.access_token not in output for output in outputs)
