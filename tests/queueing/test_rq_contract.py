"""The contract between the worker engine and RQ (queueing/rq_bridge.py lists what the engine relies on).

Jobs are enqueued with RQ's public API, run by the engine, and inspected with RQ's registries, its
`Job` API and the `rq` command line, so that an RQ release that changes its data model fails here
instead of losing jobs.
"""

import ast
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from rq import Retry, Worker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

from instabot.redis import get_redis
from queueing import rq_bridge
from queueing.queues import DEFAULT, HIGH, LOW, QUEUE_NAMES, get_queue
from tests.support import jobs
from tests.support.engine import run_engine_burst
from tests.support.processes import ROOT, command_env, start_manage
from tests.support.stack import wait_for


def rq_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "rq"), *args, "--url", settings.REDIS_URL],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def leftover_execution_keys() -> list[bytes]:
    conn = get_redis()
    return [*conn.scan_iter(match="rq:execution:*"), *conn.scan_iter(match="rq:executions:*")]


# The engine's thread pool reaches the database (maintenance, the fallback relay).
@pytest.mark.django_db(transaction=True)
def test_jobs_enqueued_with_rqs_api_end_in_rqs_registries_as_rq_would_leave_them() -> None:
    queue = get_queue(HIGH)
    kept = queue.enqueue(jobs.record, "kept")  # RQ's default: the result is kept
    quick = queue.enqueue(jobs.record, "quick", result_ttl=0)  # Instabot's jobs: nothing kept
    failing = queue.enqueue(jobs.fail, "failing")
    retried = queue.enqueue(jobs.fail, "retried", retry=Retry(max=1))
    dependent = queue.enqueue(jobs.record, "dependent", depends_on=quick)

    run_engine_burst()

    assert kept.get_status() == JobStatus.FINISHED
    assert kept.return_value() == "kept"
    assert kept.id in FinishedJobRegistry(HIGH, connection=get_redis()).get_job_ids()
    assert not Job.exists(quick.id, connection=get_redis())
    assert dependent.get_status() == JobStatus.FINISHED
    assert failing.get_status() == JobStatus.FAILED
    assert "failing failed on purpose" in (failing.latest_result().exc_string or "")
    assert retried.get_status() == JobStatus.FAILED
    assert sorted(FailedJobRegistry(HIGH, connection=get_redis()).get_job_ids()) == sorted([failing.id, retried.id])
    assert sorted(jobs.ran()) == sorted(["kept", "quick", "failing", "retried", "retried", "dependent"])
    assert StartedJobRegistry(HIGH, connection=get_redis()).count == 0
    assert leftover_execution_keys() == []

    # `rq requeue` puts failed jobs back in the queue; the engine runs them again.
    result = rq_cli("requeue", "--queue", HIGH, "--all")
    assert result.returncode == 0, result.stderr
    assert queue.count == 2
    run_engine_burst()
    assert jobs.ran().count("failing") == 2


def test_a_running_job_is_seen_by_rq_as_started_by_this_worker() -> None:
    queue = get_queue(DEFAULT)
    slow = queue.enqueue(jobs.record, "slow", 3)
    worker = start_manage("rqworker", *QUEUE_NAMES, "--burst", env=command_env(CONCURRENCY="5"))
    try:
        assert wait_for(lambda: slow.get_status(refresh=True) == JobStatus.STARTED, timeout=15, interval=0.05)
        [entry] = StartedJobRegistry(DEFAULT, connection=get_redis()).get_job_and_execution_ids()
        assert entry[0] == slow.id
        [running] = Worker.all(connection=get_redis())
        slow.refresh()
        assert slow.worker_name == running.name
        assert running.get_state() == "busy"
        assert [execution.job_id for execution in slow.get_executions()] == [slow.id]
        info = rq_cli("info")
        assert running.name in info.stdout and DEFAULT in info.stdout, info.stdout
        output, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    assert slow.get_status(refresh=True) == JobStatus.FINISHED
    assert leftover_execution_keys() == []


@pytest.mark.slow
def test_scheduled_jobs_run_when_due_and_rq_suspend_holds_the_worker() -> None:
    queue = get_queue(LOW)
    queue.enqueue_in(timedelta(seconds=1), jobs.record, "later")
    worker = start_manage("rqworker", *QUEUE_NAMES, env=command_env(CONCURRENCY="5"))
    try:
        assert wait_for(lambda: jobs.ran() == ["later"], timeout=15, interval=0.05), "scheduled job never ran"
        assert rq_cli("suspend").returncode == 0
        queue.enqueue(jobs.record, "while-suspended")
        # Suspended: the job stays queued for as long as we look.
        assert not wait_for(lambda: queue.count == 0, timeout=2.5, interval=0.1)
        assert rq_cli("resume").returncode == 0
        assert wait_for(lambda: jobs.ran() == ["later", "while-suspended"], timeout=10, interval=0.05)
    finally:
        rq_cli("resume")
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    assert worker.returncode == 0


@pytest.mark.slow
def test_jobs_taken_by_a_connection_that_dropped_before_starting_them_come_back() -> None:
    """The take is one atomic step: if the taker vanishes right after it (connection dropped, process
    killed), the jobs are in the started registry, never in limbo, and RQ's recovery runs them."""
    queue = get_queue(HIGH)
    for i in range(10):
        queue.enqueue(jobs.record, f"job{i}", retry=Retry(max=1))
    keys, args = rq_bridge.dequeue_args(
        queues=[get_queue(name) for name in QUEUE_NAMES],
        count=6,
        worker_name="vanished",
        worker_key="rq:worker:vanished",
        worker_executions_key="rq:worker:vanished:executions",
        ttl=1,
    )
    taker = redis.Redis.from_url(settings.REDIS_URL)
    pool_connection = taker.connection_pool.get_connection()
    # Send the take and drop the connection before its answer is read.
    pool_connection.send_command("EVAL", rq_bridge.DEQUEUE_LUA, len(keys), *keys, *args)
    pool_connection.disconnect()

    started = StartedJobRegistry(HIGH, connection=get_redis())
    assert wait_for(lambda: started.count == 6, timeout=5, interval=0.02)
    assert queue.count == 4  # none is in neither place
    worker = start_manage(
        "rqworker",
        *QUEUE_NAMES,
        env=command_env(CONCURRENCY="5", WORKER_HEARTBEAT_GRACE_SECONDS="1", WORKER_MAINTENANCE_INTERVAL_SECONDS="1"),
    )
    try:
        assert wait_for(lambda: len(jobs.ran()) == 10, timeout=30, interval=0.05), jobs.ran()
        assert wait_for(lambda: started.count == 0 and queue.count == 0, timeout=10, interval=0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    ran = jobs.ran()
    print(f"\nFAULT dropped-after-take: taken=6 queued=10 ran={len(ran)} distinct={len(set(ran))}")
    assert sorted(ran) == sorted(f"job{i}" for i in range(10)), output


@pytest.mark.slow
def test_a_job_running_longer_than_the_heartbeat_grace_is_not_taken_for_abandoned() -> None:
    queue = get_queue(HIGH)
    long_job = queue.enqueue(jobs.record, "long", 4, retry=Retry(max=2))
    env = command_env(CONCURRENCY="5", WORKER_HEARTBEAT_GRACE_SECONDS="1", WORKER_MAINTENANCE_INTERVAL_SECONDS="1")
    workers = [start_manage("rqworker", *QUEUE_NAMES, env=env) for _ in range(2)]
    try:
        assert wait_for(lambda: long_job.get_status(refresh=True) == JobStatus.FINISHED, timeout=20, interval=0.05)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=30)[0] for worker in workers]
    # Without live heartbeats the other worker's maintenance would have retried it after a second.
    assert jobs.ran() == ["long"], outputs
    assert FailedJobRegistry(HIGH, connection=get_redis()).count == 0


def test_queueing_modules_import_in_one_direction() -> None:
    """jobs -> dead_letters -> services: nothing imports back up that chain."""

    def imported(module: str) -> set[str]:
        tree = ast.parse((ROOT / "queueing" / f"{module}.py").read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        return names

    assert "queueing.jobs" not in imported("services") | imported("dead_letters")
    assert "queueing.dead_letters" not in imported("services")


def test_a_worker_holds_no_more_taken_jobs_than_its_concurrency() -> None:
    queue = get_queue(HIGH)
    for i in range(12):
        queue.enqueue(jobs.record, f"j{i}", 1)
    worker = start_manage("rqworker", *QUEUE_NAMES, "--burst", env=command_env(CONCURRENCY="4", LOG_LEVEL="DEBUG"))
    started = StartedJobRegistry(HIGH, connection=get_redis())
    peak = 0
    deadline = time.monotonic() + 60
    while worker.poll() is None and time.monotonic() < deadline:
        peak = max(peak, started.count)
        time.sleep(0.05)  # sampling the registry, not waiting for something
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output[-6000:]
    assert peak == 4
    assert len(jobs.ran()) == 12
