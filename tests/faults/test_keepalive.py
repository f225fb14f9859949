"""Keep-alive connections the server closes when idle never make an ordinary send uncertain.

Every HTTP server closes keep-alive connections that stay idle too long. If the client reuses one at
the moment the server closes it, the request is lost unanswered: a send Instabot must then park as
"delivery uncertain". The worker's pool drops its idle connections after GRAPH_API_KEEPALIVE_SECONDS,
so with that well below the server's idle limit it never writes into a connection the server is
closing. The other way round, aiohttp does hand out connections the server has just closed: it skips
a connection only once its event loop has seen the server's FIN, and a request written in between
is lost (run with KEEPALIVE_CLIENT_SECONDS=15 to see it).

The real worker engine sends DMs in waves of CONCURRENCY, separated by idle gaps around the fake Graph
API's idle limit, so each wave finds connections the server has just closed, or is about to.
`KEEPALIVE_SENDS` sets the number of sends (the issue's full run: 10000).
"""

import os
import random
import time
from functools import partial
from pathlib import Path

from automations.models import Automation
from devtools.fake_graph_api import FakeGraphAPI
from queueing.dead_letters import dead_letter_count, dead_letter_list
from tests.support.faults import FAULT_SUITE_MARKS, enqueue_dms, report, wait_until_settled
from tests.support.stack import PrivateRedis, stack_env, start_worker, wait_for

pytestmark = FAULT_SUITE_MARKS

SENDS = int(os.environ.get("KEEPALIVE_SENDS", "2000"))
WAVE = 50
SERVER_IDLE_CLOSE_SECONDS = 0.4
# Half the server's limit: the margin covers the time between the server's last byte and the client
# putting the connection back in its pool (95 % of the limit is not enough on a busy machine).
# KEEPALIVE_CLIENT_SECONDS=15 (longer than the server's limit) shows what happens otherwise: the test
# then fails, listing the sends parked as uncertain.
CLIENT_KEEPALIVE_SECONDS = float(os.environ.get("KEEPALIVE_CLIENT_SECONDS", "0.2"))


def answered_or_parked(graph: FakeGraphAPI, count: int) -> bool:
    return len(graph.calls()) + dead_letter_count() >= count


def test_idle_connections_closed_by_the_server_never_make_a_send_uncertain(
    tmp_path: Path, redis_server: PrivateRedis, graph: FakeGraphAPI, dm_automation: Automation
) -> None:
    graph.state.idle_close_s = SERVER_IDLE_CLOSE_SECONDS
    env = stack_env(
        redis_url=redis_server.url,
        CONCURRENCY=str(WAVE),
        GRAPH_API_KEEPALIVE_SECONDS=str(CLIENT_KEEPALIVE_SECONDS),
        LOG_LEVEL="WARNING",
    )
    worker = start_worker(env, tmp_path / "worker.log")
    expected: set[str] = set()
    rng = random.Random(10)  # noqa: S311 - gaps, not cryptography
    try:
        for wave in range(SENDS // WAVE):
            expected |= enqueue_dms(WAVE, prefix=f"w{wave}", first=wave * WAVE)
            received = wait_for(partial(answered_or_parked, graph, len(expected)), timeout=60, interval=0.005)
            assert received, worker.output()[-3000:]
            # Not a wait for something: the idle gap is the load this test applies, around the server's
            # limit on both sides.
            time.sleep(SERVER_IDLE_CLOSE_SECONDS + rng.uniform(-0.15, 0.15))
        done = wait_until_settled(graph, expected, timeout=60)
    finally:
        worker.stop()
        graph.state.idle_close_s = 0
    uncertain = [letter for letter in dead_letter_list(limit=SENDS) if letter.uncertain]
    lost, doubled = report(
        "keepalive-idle-close",
        sent=len(expected),
        graph=graph,
        expected=expected,
        parked_uncertain=len(uncertain),
        connections_opened=graph.state.connections_opened,
        closed_idle_by_server=graph.state.connections_idle_closed,
    )
    assert done, worker.output()[-3000:]
    assert uncertain == []
    assert (lost, doubled) == (0, 0)
    # The test did what it says: the server closed idle connections and the worker opened new ones.
    assert graph.state.connections_idle_closed > 0
    assert graph.state.connections_opened > WAVE
