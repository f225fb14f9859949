"""Both Graph clients against the real-HTTP fake: what each network fault becomes.

Only a connection never made may be retried (`GraphAPIConnectionError`); a request that was written
and lost its answer (closed, reset, answered too late) is `GraphAPITimeoutError`, whatever happened
to it at Meta. The fake records a call when Meta would have acted on it.
"""

import asyncio
from collections.abc import Iterator

import pytest
import requests

from automations.graph import (
    AsyncGraphClient,
    GraphAPIConnectionError,
    GraphAPIError,
    GraphAPITimeoutError,
    GraphClient,
    GraphClientConfig,
    GraphResponse,
)
from devtools.fake_graph_api import FakeGraphAPI, dropped_answer, late_answer
from tests.support.stack import free_port, wait_for

RECIPIENT = {"id": "1784"}


@pytest.fixture
def fake(graph: FakeGraphAPI) -> Iterator[FakeGraphAPI]:
    yield graph
    # A late answer still holds a server thread: later tests start from a quiet fake.
    assert wait_for(lambda: graph.quiet_for(0), timeout=10)


def config(base_url: str, *, read_timeout: float = 2.0, keepalive_seconds: float = 15.0) -> GraphClientConfig:
    return GraphClientConfig(
        base_url=base_url,
        version="v21.0",
        connect_timeout=1.0,
        read_timeout=read_timeout,
        pool_size=4,
        keepalive_seconds=keepalive_seconds,
    )


def send_async(client_config: GraphClientConfig, count: int = 1) -> list[GraphResponse | Exception]:
    """`count` DMs one after the other on one AsyncGraphClient (one keep-alive pool)."""

    async def main() -> list[GraphResponse | Exception]:
        client = AsyncGraphClient(client_config)
        results: list[GraphResponse | Exception] = []
        try:
            for _ in range(count):
                try:
                    results.append(await client.send_message(access_token="t", recipient=RECIPIENT, text="hi"))
                except Exception as exc:
                    results.append(exc)
        finally:
            await client.close()
        return results

    return asyncio.run(main())


def send_sync(client_config: GraphClientConfig) -> GraphResponse | Exception:
    try:
        return GraphClient(client_config).send_message(access_token="t", recipient=RECIPIENT, text="hi")
    except Exception as exc:
        return exc


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_dropped_answer_is_uncertain_for_both_clients(fake: FakeGraphAPI, reset: bool) -> None:
    fake.answer_next(dropped_answer(reset=reset), dropped_answer(reset=reset))
    [async_result] = send_async(config(fake.base_url))
    sync_result = send_sync(config(fake.base_url))
    assert isinstance(async_result, GraphAPITimeoutError), async_result
    assert isinstance(sync_result, GraphAPITimeoutError), sync_result
    # Meta acted on both: the fake recorded them.
    assert len(fake.calls()) == 2


def test_an_answer_later_than_the_read_timeout_is_uncertain_for_both_clients(fake: FakeGraphAPI) -> None:
    fake.answer_next(late_answer(1.0), late_answer(1.0))
    [async_result] = send_async(config(fake.base_url, read_timeout=0.2))
    sync_result = send_sync(config(fake.base_url, read_timeout=0.2))
    assert isinstance(async_result, GraphAPITimeoutError), async_result
    assert isinstance(sync_result, GraphAPITimeoutError), sync_result
    assert len(fake.calls()) == 2


def test_a_late_answer_within_the_read_timeout_is_a_success(fake: FakeGraphAPI) -> None:
    fake.answer_next(late_answer(0.2))
    [result] = send_async(config(fake.base_url, read_timeout=2.0))
    assert isinstance(result, GraphResponse) and result.message_id.startswith("m_fake_")


def test_nothing_listening_is_a_connection_never_made_for_both_clients() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    [async_result] = send_async(config(closed))
    assert isinstance(async_result, GraphAPIConnectionError), async_result
    assert isinstance(send_sync(config(closed)), GraphAPIConnectionError)


def test_a_keepalive_connection_the_server_closed_is_not_reused(fake: FakeGraphAPI) -> None:
    """The server closes an idle connection (FIN): the pool notices and opens a new one for the next
    send instead of writing into the dead one."""
    fake.state.idle_close_s = 0.2

    async def main() -> list[GraphResponse]:
        client = AsyncGraphClient(config(fake.base_url, keepalive_seconds=30))
        try:
            first = await client.send_message(access_token="t", recipient=RECIPIENT, text="1")
            deadline = asyncio.get_running_loop().time() + 5
            while fake.state.connections_idle_closed == 0:
                assert asyncio.get_running_loop().time() < deadline, "the fake never closed the idle connection"
                await asyncio.sleep(0.02)
            second = await client.send_message(access_token="t", recipient=RECIPIENT, text="2")
            return [first, second]
        finally:
            await client.close()

    responses = asyncio.run(main())
    assert all(isinstance(r, GraphResponse) for r in responses)
    assert [c.body["message"]["text"] for c in fake.calls()] == ["1", "2"]
    assert (fake.state.connections_opened, fake.state.connections_idle_closed) == (2, 1)


def test_the_client_drops_idle_connections_before_the_server_does(fake: FakeGraphAPI) -> None:
    """With GRAPH_API_KEEPALIVE_SECONDS shorter than the server's idle limit the client closes first, so
    the server never closes a connection the client might be writing into."""
    fake.state.idle_close_s = 1.0

    async def main() -> None:
        client = AsyncGraphClient(config(fake.base_url, keepalive_seconds=0.2))
        try:
            await client.send_message(access_token="t", recipient=RECIPIENT, text="1")
            deadline = asyncio.get_running_loop().time() + 5
            # aiohttp's cleanup closes the idle connection after keepalive_seconds; the fake sees it end.
            while fake.state.connections_opened < 1 or _server_connections_open(fake):
                assert asyncio.get_running_loop().time() < deadline, "the client kept its idle connection"
                await asyncio.sleep(0.02)
            await client.send_message(access_token="t", recipient=RECIPIENT, text="2")
        finally:
            await client.close()

    asyncio.run(main())
    assert len(fake.calls()) == 2
    assert fake.state.connections_opened == 2
    assert fake.state.connections_idle_closed == 0


def _server_connections_open(fake: FakeGraphAPI) -> bool:
    with fake.state.lock:
        return fake.state.connections_open > 0


def test_other_processes_script_faults_and_idle_closes_over_http(fake: FakeGraphAPI) -> None:
    script = [{"drop": "reset"}, {"delay_ms": 100}, {"status": 400, "body": {"error": {"code": 100}}}]
    assert requests.post(fake.base_url + "/_fake/script", json=script, timeout=5).status_code == 200
    assert requests.post(fake.base_url + "/_fake/idle-close", json=250, timeout=5).status_code == 200
    refused = requests.post(fake.base_url + "/_fake/script", json=[{"drop": "maybe"}], timeout=5)
    assert refused.status_code == 400 and "drop must be" in refused.json()["error"]
    results = send_async(config(fake.base_url), count=3)
    assert isinstance(results[0], GraphAPITimeoutError)
    assert isinstance(results[1], GraphResponse)
    assert isinstance(results[2], GraphAPIError) and results[2].code == 100
    calls = requests.get(fake.base_url + "/_fake/calls", timeout=5).json()
    assert [call["fault"] for call in calls] == ["reset", "late"]  # the refused one was not acted on
    assert fake.state.idle_close_s == 0.25
