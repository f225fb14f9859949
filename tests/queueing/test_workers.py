"""InstabotWorker keeps RQ's semantics with many jobs in flight (correctness only; speed is bench/)."""

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rq import Retry
from rq.job import JobStatus

from automations.context import async_redis_client
from automations.models import Automation
from devtools.fake_graph_api import FakeGraphAPI
from instabot.redis import key
from queueing.queues import HIGH, LOW, QUEUE_NAMES, get_queue
from queueing.services import events_enqueue
from queueing.workers import cancel_and_wait
from tests.conftest import ACCOUNT_ID
from tests.support import jobs
from tests.support.engine import run_engine_burst
from tests.support.processes import command_env, run_manage, start_manage
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.parsing import parse_webhook_body
from webhooks.samples import encode_payload, sample_event_payload


def wait_until(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def enqueue_dms(count: int, *, queue_name: str = HIGH, prefix: str = "s") -> None:
    events = [
        event
        for i in range(count)
        for event in parse_webhook_body(
            encode_payload(
                sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text="price", sender_id=f"{prefix}{i}")
            )
        ).events
    ]
    events_enqueue(events=events)


def test_a_freed_slot_goes_to_the_highest_waiting_queue_with_many_jobs_in_flight() -> None:
    low = get_queue(LOW)
    for i in range(20):
        low.enqueue(jobs.record, f"low{i}", 0.3)
    # Plain job functions run in the worker's thread pool: as many threads as slots, so the ten in
    # flight all run at once (with fewer, the last ones would finish together with the first DMs).
    env = command_env(CONCURRENCY="10", WORKER_SYNC_THREADS="10")
    worker = start_manage("rqworker", *QUEUE_NAMES, "--burst", env=env)
    try:
        # Ten low jobs are in flight and ten wait; now DMs arrive.
        wait_until(lambda: low.started_job_registry.count == 10)
        high = get_queue(HIGH)
        for i in range(10):
            high.enqueue(jobs.record, f"high{i}", 0.3)
        output, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    order = jobs.ran()
    assert sorted(order[:10]) == sorted(f"low{i}" for i in range(10))
    assert sorted(order[10:20]) == sorted(f"high{i}" for i in range(10)), order
    assert sorted(order[20:]) == sorted(f"low{i}" for i in range(10, 20))


# The engine's thread pool reaches the database (maintenance, the fallback relay).
@pytest.mark.django_db(transaction=True)
def test_a_raising_job_is_retried_or_failed_as_configured_while_the_others_finish() -> None:
    queue = get_queue(HIGH)
    retried = queue.enqueue(jobs.fail, "retried", retry=Retry(max=2))
    failed = queue.enqueue(jobs.fail, "failed")
    fine = [queue.enqueue(jobs.record, f"ok{i}", 0.05) for i in range(20)]

    run_engine_burst(concurrency=8)

    assert Counter(jobs.ran()) == Counter({"retried": 3, "failed": 1, **{f"ok{i}": 1 for i in range(20)}})
    assert retried.get_status() == JobStatus.FAILED
    assert failed.get_status() == JobStatus.FAILED
    assert set(queue.failed_job_registry.get_job_ids()) == {retried.id, failed.id}
    assert "RuntimeError: failed failed on purpose" in (failed.latest_result().exc_string or "")
    assert all(job.get_status() == JobStatus.FINISHED for job in fine)
    assert queue.started_job_registry.count == 0


# The engine's thread pool reaches the database (maintenance, the fallback relay).
@pytest.mark.django_db(transaction=True)
def test_job_timeouts_still_fire_with_jobs_in_flight() -> None:
    queue = get_queue(HIGH)
    slow = queue.enqueue(jobs.spin, 30, job_timeout=1)
    others = [queue.enqueue(jobs.record, f"ok{i}", 0.2) for i in range(10)]
    started = time.monotonic()

    run_engine_burst(concurrency=4)

    assert time.monotonic() - started < 20
    assert slow.get_status() == JobStatus.FAILED
    assert "JobTimeoutException" in (slow.latest_result().exc_string or "")
    assert all(job.get_status() == JobStatus.FINISHED for job in others)


def signal_worker_with_ten_jobs_in_flight(*, second_signal: bool) -> tuple[int | None, str]:
    """Start `rqworker` (CONCURRENCY=10), SIGTERM it once ten jobs run, maybe again, and wait for it."""
    worker = start_manage("rqworker", *QUEUE_NAMES, env=command_env(CONCURRENCY="10"))
    try:
        wait_until(lambda: get_queue(HIGH).started_job_registry.count >= 10)
        worker.send_signal(signal.SIGTERM)
        if second_signal:
            time.sleep(1.2)  # RQ ignores a repeat within a second as the same stop
            worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
    return worker.returncode, output


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigterm_finishes_jobs_in_flight_and_loses_or_doubles_nothing(
    graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    graph.state.latency_s = 0.5
    enqueue_dms(40)

    returncode, output = signal_worker_with_ten_jobs_in_flight(second_signal=False)

    assert returncode == 0, output
    answered = len(graph.calls())
    assert 10 <= answered < 40
    assert get_queue(HIGH).started_job_registry.count == 0
    assert get_queue(HIGH).count == 40 - answered

    graph.state.latency_s = 0
    result = run_manage("rqworker", *QUEUE_NAMES, "--burst", env=command_env(CONCURRENCY="10"))

    assert result.returncode == 0, result.stdout + result.stderr
    recipients = Counter(call.body["recipient"]["id"] for call in graph.calls())
    assert recipients == Counter({f"s{i}": 1 for i in range(40)})


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_second_signal_stops_at_once_and_leaves_unfinished_jobs_recoverable(
    graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    graph.state.latency_s = 3
    enqueue_dms(30)

    returncode, output = signal_worker_with_ten_jobs_in_flight(second_signal=True)

    assert returncode != 0, output
    high = get_queue(HIGH)
    unfinished = high.started_job_registry.get_job_ids()
    # Nothing lost: ten jobs wait in the started registry, where RQ's maintenance fails (or retries)
    # them once their heartbeat lapses; twenty were never taken.
    assert len(unfinished) == 10
    assert high.count == 20
    assert all(high.fetch_job(job_id).get_status() == JobStatus.STARTED for job_id in unfinished)
    # The fake still answers the ten requests the worker abandoned; let it, so no later test sees them.
    wait_until(lambda: len(graph.calls()) == 10)


# The engine's thread pool reaches the database (maintenance, the fallback relay).
@pytest.mark.django_db(transaction=True)
def test_concurrency_one_runs_one_job_at_a_time_in_priority_order() -> None:
    for name in reversed(QUEUE_NAMES):
        for i in range(3):
            get_queue(name).enqueue(jobs.record, f"{name}{i}", 0.02)

    run_engine_burst(concurrency=1)

    assert jobs.ran() == [f"{name}{i}" for name in QUEUE_NAMES for i in range(3)]


@pytest.mark.django_db
def test_the_webhook_intake_does_no_database_work(webhook_client: Client, django_assert_num_queries: Any) -> None:
    payload = sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text="price", sender_id="s1")

    with django_assert_num_queries(0):
        response = post_webhook(webhook_client, encode_payload(payload))

    assert response.status_code == 200
    assert get_queue(HIGH).count == 1


def test_a_task_that_drops_a_cancellation_is_still_stopped() -> None:
    # What Python 3.11's asyncio.wait_for does inside redis-py when the cancel lands as a write completes.
    async def scenario() -> tuple[int, bool]:
        dropped = 0

        async def heartbeat_like() -> None:
            nonlocal dropped
            while True:
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    if dropped == 0:
                        dropped += 1
                        asyncio.current_task().uncancel()  # type: ignore[union-attr]
                        continue
                    raise

        task = asyncio.get_running_loop().create_task(heartbeat_like())
        await asyncio.sleep(0.02)
        left = await cancel_and_wait([task], seconds=5)
        return dropped, task.cancelled() and not left

    dropped, stopped = asyncio.run(scenario())
    print(f"cancellations dropped by the task: {dropped}; stopped: {stopped}")
    assert dropped == 1 and stopped


def test_redis_commands_cancelled_mid_flight_stop_at_the_first_cancel() -> None:
    # Tasks cancelled at random points of Redis round trips on the engine's client: each ends at the
    # first cancel (redis-py's own connections on Python 3.11 let nearly every one of these go on).
    test_key = key("cancel-test")

    async def scenario() -> tuple[int, int]:
        client = async_redis_client(max_connections=50)

        stop = False

        async def loop_forever() -> None:
            while not stop:
                await client.hset(test_key, "a", "1")

        tasks = [asyncio.get_running_loop().create_task(loop_forever()) for _ in range(50)]
        await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        _, still_running = await asyncio.wait(tasks, timeout=2)
        stop = True  # when failing, leave no task behind
        await asyncio.wait(tasks, timeout=10)
        await client.delete(test_key)
        await client.aclose()
        return sum(task.cancelled() for task in tasks), len(still_running)

    cancelled, still_running = asyncio.run(scenario())
    print(f"tasks stopped by one cancel: {cancelled} of 50; still running after it: {still_running}")
    assert (cancelled, still_running) == (50, 0)
