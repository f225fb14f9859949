"""Sends whose answer was lost after the request was written: parked as "delivery uncertain", never
re-sent by Instabot, listed apart, and settled only by a person (send anyway, or discard).

The faults come from the real-HTTP fake Graph API: it reads the request (Meta acts on it, the fake
records the call) and then closes or resets the connection without answering, or answers after the
worker's read timeout.
"""

from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from automations.models import Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI, ScriptedAnswer, dropped_answer, late_answer
from queueing.dead_letters import DeadLetter, dead_letter_list
from queueing.queues import QUEUE_NAMES, get_queue
from tests.conftest import ACCOUNT_ID, TOKEN, run_worker_burst
from tests.support.processes import command_env, run_manage
from tests.support.stack import wait_for
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

FAULTS = {
    "closed": dropped_answer(),
    "reset": dropped_answer(reset=True),
    # Answered after 1.5 s; the worker gives up after 0.3 s (GRAPH_API_READ_TIMEOUT below).
    "late": late_answer(1.5),
}


def dm_body(sender: str) -> bytes:
    return encode_payload(
        sample_event_payload(
            kind=EventKind.DM, account_id=ACCOUNT_ID, text="price", sender_id=sender, event_id=f"m.{sender}"
        )
    )


def post_dms(client: Client, senders: list[str]) -> None:
    for sender in senders:
        assert post_webhook(client, dm_body(sender)).status_code == 200


def run_engine() -> None:
    """`rqworker --burst` with the real engine, five jobs in flight, a short read timeout."""
    result = run_manage(
        "rqworker", *QUEUE_NAMES, "--burst", env=command_env(CONCURRENCY="5", GRAPH_API_READ_TIMEOUT="0.3")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def sends_per_recipient(graph: FakeGraphAPI) -> Counter[str]:
    return Counter(call.body["recipient"]["id"] for call in graph.calls())


def nothing_left_to_run() -> bool:
    queues = [get_queue(name) for name in QUEUE_NAMES]
    return all(q.count == 0 and q.started_job_registry.count == 0 and q.failed_job_registry.count == 0 for q in queues)


def parked_by_sender() -> dict[str, DeadLetter]:
    return {str(letter.event["sender_id"]): letter for letter in dead_letter_list()}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_lost_answers_are_parked_uncertain_and_never_sent_twice_by_the_engine(
    graph: FakeGraphAPI, automations: dict[str, Automation], fault: str
) -> None:
    senders = [f"u{i}" for i in range(10)]
    # Every other request loses its answer, in the order requests arrive.
    graph.answer_next(*[FAULTS[fault] if i % 2 == 0 else ScriptedAnswer() for i in range(10)])
    client = Client()
    post_dms(client, senders)
    run_engine()
    assert wait_for(lambda: graph.quiet_for(0), timeout=10)  # late answers finished

    faulted = {call.body["recipient"]["id"] for call in graph.calls() if call.fault}
    assert len(faulted) == 5
    assert sends_per_recipient(graph) == Counter({sender: 1 for sender in senders})
    parked = parked_by_sender()
    assert set(parked) == faulted
    assert all(letter.uncertain and letter.reason.startswith("delivery uncertain") for letter in parked.values())
    assert nothing_left_to_run()

    # Meta delivers the whole batch again: nothing is sent again, and nothing is parked twice.
    post_dms(client, senders)
    run_engine()
    assert sends_per_recipient(graph) == Counter({sender: 1 for sender in senders})
    assert set(parked_by_sender()) == faulted and len(dead_letter_list()) == 5
    assert nothing_left_to_run()


@pytest.mark.django_db
def test_replay_dead_lists_uncertain_apart_and_a_person_sends_anyway_or_discards(
    client: Client,
    graph: FakeGraphAPI,
    automations: dict[str, Automation],
    capsys: pytest.CaptureFixture[str],
) -> None:
    graph.answer_next(dropped_answer(), dropped_answer(), dropped_answer(), ScriptedAnswer())
    post_dms(client, ["a", "b", "c", "d"])
    run_worker_burst()
    graph.expire_token(TOKEN)  # an ordinary dead letter beside them
    post_dms(client, ["e"])
    run_worker_burst()
    graph.state.expired_tokens.clear()
    # Meta's refusal marked the token refused (its sends park at once); a new one clears that.
    workspace = Workspace.objects.get(instagram_account_id=ACCOUNT_ID)
    workspace.access_token = "a-new-token"
    workspace.save()
    parked = parked_by_sender()
    assert {s: letter.uncertain for s, letter in parked.items()} == {"a": True, "b": True, "c": True, "e": False}
    capsys.readouterr()

    call_command("replay_dead")
    listing = capsys.readouterr().out
    uncertain_part, others_part = listing.split("other dead letters")
    assert uncertain_part.startswith("delivery uncertain (3)")
    assert all(parked[s].job_id in uncertain_part for s in "abc")
    assert others_part.startswith(" (1)") and parked["e"].job_id in others_part

    # Replaying is not a decision: refused for uncertain ones, skipped by --all.
    with pytest.raises(CommandError, match="delivery uncertain"):
        call_command("replay_dead", parked["a"].job_id)
    call_command("replay_dead", "--all")
    assert "3 delivery-uncertain dead letter(s) left for a decision" in capsys.readouterr().out
    assert set(parked_by_sender()) == {"a", "b", "c"}

    # Send anyway: the mark is cleared and the reply goes out once more, once.
    call_command("replay_dead", "--send-anyway", parked["a"].job_id)
    with pytest.raises(CommandError, match="not in the dead letters"):
        call_command("replay_dead", "--send-anyway", parked["a"].job_id)  # the second click finds nothing
    run_worker_burst()
    assert sends_per_recipient(graph)["a"] == 2
    # Discard: gone, and a redelivery of the same message is not sent either.
    call_command("replay_dead", "--discard", parked["b"].job_id)
    post_dms(client, ["b"])
    run_worker_burst()
    assert sends_per_recipient(graph)["b"] == 1
    assert set(parked_by_sender()) == {"c"}
    # A redelivery of an event still waiting for a decision adds no second dead letter and no send.
    post_dms(client, ["c"])
    run_worker_burst()
    assert sends_per_recipient(graph)["c"] == 1 and len(dead_letter_list()) == 1


@pytest.mark.django_db
def test_the_admin_refuses_to_replay_an_uncertain_dead_letter_and_says_why(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    graph.answer_next(dropped_answer())
    post_dms(client, ["a"])
    run_worker_burst()
    [letter] = dead_letter_list()
    User.objects.create_superuser("staff", password="pw-123456")
    client.login(username="staff", password="pw-123456")

    page = client.get("/admin/dead-letters/")
    assert b"Delivery uncertain: decide each one (1)" in page.content
    response = client.post("/admin/dead-letters/", {"job_id": [letter.job_id]}, follow=True)  # "Replay selected"
    assert "1 delivery-uncertain one(s) not replayed: send anyway or discard." in response.content.decode()
    response = client.post("/admin/dead-letters/", {"replay_all": "Replay all"}, follow=True)
    assert "1 delivery-uncertain one(s) wait for your decision." in response.content.decode()
    assert dead_letter_list() == [letter]
    assert sum(get_queue(name).count for name in QUEUE_NAMES) == 0
    # "Send anyway" under the table acts on the checked rows.
    client.post("/admin/dead-letters/", {"send_anyway": "", "job_id": [letter.job_id]})
    run_worker_burst()
    assert sends_per_recipient(graph) == Counter({"a": 2})
    assert dead_letter_list() == []
