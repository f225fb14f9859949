"""Duplicate storms: the same event many times at once, taken by two worker processes; one reply.

Real gunicorn, two `rqworker` processes and a private Redis. Each scenario prints
`FAULT <name>: sent=… answered=… parked=… lost=… doubled=…` and what the workers made of the copies.
"""

import threading
from pathlib import Path

from automations.models import Automation
from automations.stats import stats_get
from devtools.fake_graph_api import FakeGraphAPI
from queueing.dead_letters import dead_letter_list
from queueing.queues import HIGH, get_queue
from queueing.services import event_job_data
from tests.support.faults import FAULT_SUITE_MARKS, dm_body, dm_outcomes, post, report, wait_until_settled
from tests.support.stack import PrivateRedis, stack_env, start_web, start_worker
from webhooks.events import EventKind, InstagramEvent

pytestmark = FAULT_SUITE_MARKS


def test_the_same_signed_webhook_20_times_at_once_while_two_workers_run_gets_one_reply(
    tmp_path: Path, redis_server: PrivateRedis, graph: FakeGraphAPI, dm_automation: Automation
) -> None:
    # Meta's answer takes 0.3 s: copies taken meanwhile find the send in progress.
    graph.state.latency_s = 0.3
    env = stack_env(redis_url=redis_server.url)
    web, url = start_web(env, tmp_path / "web.log")
    workers = [start_worker(env, tmp_path / f"worker-{i}.log") for i in range(2)]
    body = dm_body(7, prefix="storm")
    start = threading.Barrier(20)
    statuses: list[int] = []

    def deliver() -> None:
        start.wait(timeout=10)
        statuses.append(post(url, body))

    try:
        threads = [threading.Thread(target=deliver) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        done = wait_until_settled(graph, {"u7"}, timeout=60)
    finally:
        for worker in workers:
            worker.stop()
        web.stop()
    graph.state.latency_s = 0
    stats = stats_get()
    lost, doubled = report(
        "storm-20-deliveries-two-workers",
        sent=1,
        graph=graph,
        expected={"u7"},
        deliveries=len(statuses),
        replied=stats.get("replied", 0),
        duplicates=stats.get("duplicate", 0),
        found_in_progress=dm_outcomes("retried"),
    )
    assert done, workers[0].output()[-3000:] + workers[1].output()[-3000:]
    assert statuses == [200] * 20, web.output()[-3000:]
    assert len(graph.calls()) == 1
    # Every copy ran to an end: one reply, nineteen found it answered; none parked or failed.
    assert (stats.get("replied", 0), stats.get("duplicate", 0)) == (1, 19)
    assert dead_letter_list() == [] and get_queue(HIGH).failed_job_registry.count == 0
    assert (lost, doubled) == (0, 0)


def test_two_workers_racing_on_each_event_send_one_reply_per_event(
    tmp_path: Path, redis_server: PrivateRedis, graph: FakeGraphAPI, dm_automation: Automation
) -> None:
    """Each of 20 events is queued twice, side by side; two workers taking one job at a time each get
    one copy of the same event at about the same moment."""
    graph.state.latency_s = 0.1
    events = [
        InstagramEvent(
            kind=EventKind.DM,
            account_id=dm_automation.workspace.instagram_account_id,
            event_id=f"race.{i}",
            sender_id=f"u{i}",
            text="hi",
        )
        for i in range(20)
    ]
    get_queue(HIGH).enqueue_many([event_job_data(event.to_payload()) for event in events for _ in range(2)])
    env = stack_env(redis_url=redis_server.url, CONCURRENCY="1")
    workers = [start_worker(env, tmp_path / f"worker-{i}.log") for i in range(2)]
    expected = {event.sender_id for event in events}
    try:
        done = wait_until_settled(graph, expected, timeout=90)
    finally:
        for worker in workers:
            worker.stop()
    graph.state.latency_s = 0
    stats = stats_get()
    lost, doubled = report(
        "two-workers-racing",
        sent=20,
        graph=graph,
        expected=expected,
        jobs=40,
        replied=stats.get("replied", 0),
        duplicates=stats.get("duplicate", 0),
        found_in_progress=dm_outcomes("retried"),
    )
    assert done, workers[0].output()[-3000:] + workers[1].output()[-3000:]
    assert len(graph.calls()) == 20
    assert (stats.get("replied", 0), stats.get("duplicate", 0)) == (20, 20)
    # The workers did race: copies found the other worker's send of the same event in progress.
    assert dm_outcomes("retried") >= 1
    assert dead_letter_list() == [] and get_queue(HIGH).failed_job_registry.count == 0
    assert (lost, doubled) == (0, 0)
