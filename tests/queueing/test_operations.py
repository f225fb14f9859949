"""The operations page's figures and the housekeeping every worker runs, on real Redis and database."""

import time
from typing import Any

import pytest
from django.test import Client

from automations.activity import activity_flush, activity_record
from automations.activity_store import activity_backlog
from automations.models import ActivityEntry, Automation
from automations.stats import stat_incr, stats_flush
from instabot.redis import get_redis
from queueing.operations import jobs_per_minute, jobs_total_sample, operations_get, queue_states, worker_housekeeping
from tests.conftest import run_worker_burst
from tests.support.webhooks import post_webhook

pytestmark = pytest.mark.django_db


def test_queue_depth_and_the_age_of_the_oldest_waiting_job(client: Client, automations: dict[str, Automation]) -> None:
    post_webhook(client, "messages__text")
    post_webhook(client, "comments__feed")
    time.sleep(1.1)  # so that the oldest job is measurably old
    post_webhook(client, "comments__reply")
    states = {state.name: state for state in queue_states()}
    assert (states["high"].depth, states["default"].depth, states["low"].depth) == (1, 0, 2)
    assert states["default"].oldest_age_seconds is None
    assert states["low"].oldest_age_seconds is not None and states["low"].oldest_age_seconds >= 1.0
    assert states["high"].oldest_age_seconds is not None and states["high"].oldest_age_seconds < 60


def test_jobs_per_minute_from_the_samples_workers_take() -> None:
    start = (int(time.time() // 60) - 3) * 60  # three minutes ago, at the start of its minute
    stat_incr(name="replied", amount=10)
    stats_flush()
    jobs_total_sample(now=start)
    stat_incr(name="replied", amount=5)
    stat_incr(name="no_match", amount=2)
    stats_flush()
    jobs_total_sample(now=start + 60)
    jobs_total_sample(now=start + 75)  # a later sample in the same minute does not count
    stat_incr(name="replied", amount=4)
    stats_flush()
    jobs_total_sample(now=start + 120)
    minutes = jobs_per_minute(minutes=5)
    assert len(minutes) == 5
    assert [minute.jobs for minute in minutes] == [None, 7, 4, None, None]
    assert minutes[1].start.timestamp() == start


@pytest.mark.django_db(transaction=True)  # a round closes its database connection, as a worker thread must
def test_a_worker_housekeeping_round_drains_the_activity_log(automations: dict[str, Automation]) -> None:
    automation = automations["dm"]
    for index in range(3):
        activity_record(
            workspace_id=automation.workspace_id,
            automation_id=automation.pk,
            kind="dm",
            event_id=f"m{index}",
            action="dm",
            recipient="1",
            status="sent",
        )
    activity_flush()
    assert activity_backlog() == 3
    worker_housekeeping()
    assert ActivityEntry.objects.count() == 3
    assert activity_backlog() == 0
    # It also purged (once today) and sampled the jobs counter for this minute.
    assert list(get_redis().scan_iter(match="*:activity:purged:*"))
    assert list(get_redis().scan_iter(match="*:ops:jobs_total:*"))


def test_operations_figures_after_work(
    client: Client, graph: Any, automations: dict[str, Automation], admin_client: Client
) -> None:
    post_webhook(client, "messages__text")
    run_worker_burst()
    operations = operations_get()
    assert [queue.depth for queue in operations.queues] == [0, 0, 0]
    assert operations.dead_letters == 0 and operations.fallback_backlog == 0
    assert operations.events.get("replied") == 1
    assert operations.workers == []  # the burst worker has stopped and deregistered
    assert operations.send_problems == {"failed": 0, "uncertain": 0}
    page = admin_client.get("/admin/operations/")
    assert page.status_code == 200
    assert 'id="queue-high"' in page.content.decode()


def test_the_operations_page_says_so_when_redis_is_down(admin_client: Client, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    response = admin_client.get("/admin/operations/")
    assert response.status_code == 503
    assert "Redis did not answer" in response.content.decode()


def test_the_operations_page_is_for_staff_only(client: Client) -> None:
    response = client.get("/admin/operations/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
