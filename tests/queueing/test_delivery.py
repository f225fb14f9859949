"""Exactly one reply, retries by error class, dead letters and send limits, through the real queue."""

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from automations.models import Automation, Workspace
from automations.stats import stats_get
from devtools.fake_graph_api import FakeGraphAPI, ScriptedAnswer, graph_error
from instabot.redis import get_redis
from queueing.dead_letters import dead_letter_list
from queueing.queues import get_queue
from tests.conftest import ACCOUNT_ID, TOKEN, run_until_settled, run_worker_burst, scheduled_count
from tests.support.stack import wait_for
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_retries(settings: Any) -> None:
    settings.DELIVERY_BACKOFF_BASE_SECONDS = 1
    settings.DELIVERY_BACKOFF_MAX_SECONDS = 1
    settings.DELIVERY_MAX_ATTEMPTS = 3


def dm(text: str = "price", *, sender: str = "1111", mid: str | None = None) -> bytes:
    return encode_payload(
        sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text=text, sender_id=sender, event_id=mid)
    )


def test_the_same_payload_five_times_gets_one_reply(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    body = dm(mid="mid.redelivered")
    for _ in range(5):
        assert post_webhook(client, body).status_code == 200
    assert get_queue("high").count == 5
    run_worker_burst()
    assert len(graph.calls()) == 1
    assert stats_get()["duplicate"] == 4


def test_a_comment_redelivered_gets_one_public_and_one_private_reply(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    for _ in range(3):
        post_webhook(client, "comments__feed")
        run_worker_burst()
    assert sorted(c.path.rsplit("/", 1)[1] for c in graph.calls()) == ["messages", "replies"]


def test_server_errors_are_retried_with_backoff_then_answered_once(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    graph.answer_next(ScriptedAnswer(status=500, body={}), graph_error(2, "Temporary issue", status=503))
    post_webhook(client, dm())
    run_worker_burst()
    assert graph.calls() == []
    assert scheduled_count() == 1  # waiting out its backoff, not failed
    run_until_settled()
    assert len(graph.calls()) == 1
    assert dead_letter_list() == []
    assert get_queue("high").failed_job_registry.count == 0


def test_transient_errors_past_the_last_attempt_become_a_dead_letter(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    graph.answer_next(*[ScriptedAnswer(status=502, body={}) for _ in range(3)])
    post_webhook(client, dm())
    run_until_settled()
    assert graph.calls() == []
    [letter] = dead_letter_list()
    assert letter.reason.startswith("retries exhausted")
    assert (letter.attempts, letter.error and letter.error["status"]) == (3, 502)


def test_expired_token_is_dead_lettered_at_once_and_replays_once_after_the_fix(
    client: Client,
    graph: FakeGraphAPI,
    automations: dict[str, Automation],
    workspace: Workspace,
    django_capture_on_commit_callbacks: Any,
) -> None:
    graph.expire_token(TOKEN)
    post_webhook(client, dm(mid="mid.token"))
    run_until_settled()
    [letter] = dead_letter_list()
    assert letter.attempts == 1 and letter.error and letter.error["code"] == 190
    assert graph.calls() == []

    with django_capture_on_commit_callbacks(execute=True):  # the cache forgets the old token on commit
        workspace.access_token = "fresh-token"  # as the admin or the API would save it
        workspace.save()
    call_command("replay_dead", letter.job_id)
    call_command("replay_dead", "--all")  # nothing left to replay: no second job
    run_until_settled()
    [call] = graph.calls()
    assert call.token == "fresh-token"
    assert dead_letter_list() == []
    # A later redelivery of the same message is not answered again.
    post_webhook(client, dm(mid="mid.token"))
    run_until_settled()
    assert len(graph.calls()) == 1


def test_error_meta_returns_although_it_sent_is_not_retried(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    graph.answer_next(
        ScriptedAnswer(
            status=400, body=graph_error(1, "An unknown error occurred", subcode=1357046).body, counts_as_sent=True
        )
    )
    post_webhook(client, dm(mid="mid.sent-anyway"))
    run_until_settled()
    post_webhook(client, dm(mid="mid.sent-anyway"))
    run_until_settled()
    assert len(graph.calls()) == 1
    assert scheduled_count() == 0 and dead_letter_list() == []


def test_no_answer_in_time_is_parked_as_uncertain_not_resent(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], settings: Any
) -> None:
    settings.GRAPH_API_READ_TIMEOUT = 0.3
    graph.state.latency_s = 0.8
    post_webhook(client, dm(mid="mid.slow"))
    run_until_settled()
    assert wait_for(lambda: graph.quiet_for(0), timeout=5)  # the fake finished the request it was holding
    graph.state.latency_s = 0
    assert len(graph.calls()) == 1
    [letter] = dead_letter_list()
    assert "uncertain" in letter.reason
    post_webhook(client, dm(mid="mid.slow"))
    run_until_settled()
    assert len(graph.calls()) == 1


def test_meta_throttling_pauses_the_account_and_defers_without_failing(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    usage = {ACCOUNT_ID: [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 2}]}
    graph.answer_next(
        ScriptedAnswer(
            status=400,
            body=graph_error(80002, "There have been too many calls to this Instagram account.").body,
            headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
        )
    )
    post_webhook(client, dm(mid="mid.throttled", sender="1"))
    post_webhook(client, dm(mid="mid.after", sender="2"))
    run_worker_burst()
    assert graph.calls() == []
    pause_ms = get_redis().pttl("instabot-test:pause:" + ACCOUNT_ID)
    assert 110_000 < pause_ms <= 120_000  # 2 minutes, as Meta said
    assert scheduled_count() == 2
    assert dead_letter_list() == [] and get_queue("high").failed_job_registry.count == 0
    assert stats_get()["deferred"] == 2

    get_redis().delete("instabot-test:pause:" + ACCOUNT_ID)  # the pause is over
    for job_id in get_queue("high").scheduled_job_registry.get_job_ids():
        job = get_queue("high").fetch_job(job_id)
        assert job is not None
        get_queue("high").scheduled_job_registry.schedule(job, datetime.now(UTC))
    run_until_settled()
    assert sorted(c.body["recipient"]["id"] for c in graph.calls()) == ["1", "2"]


def test_sends_per_second_stay_under_the_account_limit_and_none_are_dropped(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], settings: Any
) -> None:
    settings.SEND_LIMIT_PER_SECOND = 4
    for i in range(12):
        post_webhook(client, dm(sender=str(i)))
    run_until_settled(timeout=20)
    times = sorted(c.at for c in graph.calls())
    assert len(times) == 12
    # The window is enforced when a send is claimed; the fake sees it a little later, by however long
    # this (busy) machine takes to write it. Unlimited, all twelve would arrive within a few milliseconds.
    for i in range(len(times) - 4):
        assert times[i + 4] - times[i] >= 0.8


def test_private_replies_over_the_hourly_limit_wait_and_are_not_dropped(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], settings: Any
) -> None:
    settings.PRIVATE_REPLY_LIMIT_PER_HOUR = 2
    Automation.objects.update(public_reply_text="")
    for i in range(3):
        payload = sample_event_payload(kind=EventKind.COMMENT, account_id=ACCOUNT_ID, text="price", event_id=f"c{i}")
        post_webhook(client, encode_payload(payload))
    run_worker_burst()
    assert len(graph.calls()) == 2
    assert scheduled_count() == 1
    [job_id] = get_queue("low").scheduled_job_registry.get_job_ids()
    due = get_queue("low").scheduled_job_registry.get_scheduled_time(job_id)
    assert due.timestamp() - time.time() > 3000  # about an hour from now, when a slot frees up
    assert dead_letter_list() == []
