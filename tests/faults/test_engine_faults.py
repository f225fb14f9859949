"""The worker engine under faults: workers SIGKILLed, Redis killed and restarted from its AOF.

Real `rqworker` processes, a private redis-server (append-only, fsync always) and the fake Graph API
answering after 100 ms. Each scenario prints `FAULT <name>: sent=… answered=… parked=… lost=… doubled=…`
and asserts that every DM was answered once or parked as "delivery uncertain", none lost, none doubled.
"""

from pathlib import Path

from automations.models import Automation
from devtools.fake_graph_api import FakeGraphAPI
from queueing.dead_letters import dead_letter_list
from tests.support.faults import FAULT_SUITE_MARKS, enqueue_dms, report, unfinished_jobs, wait_until_settled
from tests.support.stack import PrivateRedis, stack_env, start_worker, wait_for

pytestmark = FAULT_SUITE_MARKS


def engine_env(redis_url: str, **extra: str) -> dict[str, str]:
    settings = {
        "CONCURRENCY": "200",
        # One account sends them all: lift Meta's per-account limit so 200 are really in flight.
        "SEND_LIMIT_PER_SECOND": "100000",
        "DELIVERY_LEASE_SECONDS": "3",
        "WORKER_HEARTBEAT_GRACE_SECONDS": "3",
        "WORKER_MAINTENANCE_INTERVAL_SECONDS": "1",
        "JOB_TIMEOUT": "15",
    }
    return stack_env(redis_url=redis_url, **{**settings, **extra})


def calls_at_least(graph: FakeGraphAPI, count: int) -> bool:
    return len(graph.calls()) >= count


def test_worker_sigkilled_twice_while_600_dms_drain(
    tmp_path: Path, redis_server: PrivateRedis, graph: FakeGraphAPI, dm_automation: Automation
) -> None:
    graph.state.latency_s = 0.1
    env = engine_env(redis_server.url)
    expected = enqueue_dms(600)
    first = start_worker(env, tmp_path / "worker-1.log")
    assert wait_for(lambda: calls_at_least(graph, 100), timeout=30, interval=0.01), first.output()[-3000:]
    first.kill_tree()
    killed_first = len(graph.calls())
    second = start_worker(env, tmp_path / "worker-2.log")
    assert wait_for(lambda: calls_at_least(graph, 350), timeout=30, interval=0.01), second.output()[-3000:]
    second.kill_tree()
    killed_second = len(graph.calls())
    third = start_worker(env, tmp_path / "worker-3.log")
    try:
        done = wait_until_settled(graph, expected, timeout=120)
    finally:
        third.stop()
    graph.state.latency_s = 0
    parked = dead_letter_list(limit=1000)
    lost, doubled = report(
        "engine-worker-sigkill-twice",
        sent=600,
        graph=graph,
        expected=expected,
        calls_at_first_kill=killed_first,
        calls_at_second_kill=killed_second,
    )
    assert done, third.output()[-6000:]
    assert unfinished_jobs() == 0
    assert all("delivery uncertain" in letter.reason for letter in parked), [letter.reason for letter in parked]
    # Only sends cut off mid-request are parked: at most CONCURRENCY per kill.
    assert len(parked) <= 400
    assert (lost, doubled) == (0, 0), third.output()[-4000:]


def test_redis_killed_and_restarted_from_its_aof_twice_while_1000_dms_drain(
    tmp_path: Path, redis_server: PrivateRedis, graph: FakeGraphAPI, dm_automation: Automation
) -> None:
    graph.state.latency_s = 0.1
    env = engine_env(redis_server.url, WORKER_HEARTBEAT_GRACE_SECONDS="10")
    expected = enqueue_dms(1000)
    worker = start_worker(env, tmp_path / "worker.log")
    restarts = 0
    try:
        for threshold in (200, 600):
            assert wait_for(lambda t=threshold: calls_at_least(graph, t), timeout=60, interval=0.01), worker.output()[
                -3000:
            ]
            redis_server.kill()
            redis_server.start()  # same port, same append-only file
            restarts += 1
        done = wait_until_settled(graph, expected, timeout=120)
        alive = worker.process.poll() is None
    finally:
        worker.stop()
    graph.state.latency_s = 0
    parked = dead_letter_list(limit=1000)
    lost, doubled = report("engine-redis-killed-twice", sent=1000, graph=graph, expected=expected, restarts=restarts)
    assert alive, worker.output()[-4000:]
    assert done, worker.output()[-6000:]
    assert all("delivery uncertain" in letter.reason for letter in parked)
    assert (lost, doubled) == (0, 0), worker.output()[-4000:]
