"""`python manage.py rqworker high default low --burst`, as operators run it, in its own process."""

import sys
from pathlib import Path

import pytest
from django.test import Client

from automations.models import ActivityEntry, Automation, Miss
from devtools.fake_graph_api import FakeGraphAPI
from queueing.queues import QUEUE_NAMES, get_queue
from tests.conftest import ACCOUNT_ID
from tests.support.processes import command_env, run_manage
from tests.support.stack import ManagedProcess, wait_for
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_rqworker_command_with_concurrency_one_answers_in_strict_priority_order(
    graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    Automation.objects.update(keywords=[], public_reply_text="")
    client = Client()
    for i, kind in enumerate([EventKind.COMMENT, EventKind.STORY_MENTION, EventKind.DM] * 3):
        payload = sample_event_payload(kind=kind, account_id=ACCOUNT_ID, text="hi", sender_id=f"s{i}")
        assert post_webhook(client, encode_payload(payload)).status_code == 200

    # One job at a time, so the Graph calls arrive in the order jobs were taken, as from a plain RQ worker.
    result = run_manage("rqworker", "high", "default", "low", "--burst", env=command_env(CONCURRENCY="1"))

    assert result.returncode == 0, result.stdout + result.stderr
    texts = [call.body["message"]["text"] for call in graph.calls()]
    assert texts == ["DM: prices here"] * 3 + ["Story: thanks!"] * 3 + ["Private: prices here"] * 3
    assert sum(get_queue(name).count for name in QUEUE_NAMES) == 0
    assert "workspace-token-abc" not in result.stdout + result.stderr


def test_a_running_worker_moves_the_activity_log_into_the_database_by_itself(
    graph: FakeGraphAPI, automations: dict[str, Automation], tmp_path: Path
) -> None:
    client = Client()
    post_webhook(client, encode_payload(sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text="price")))
    post_webhook(client, encode_payload(sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text="hours?")))
    worker = ManagedProcess(
        [sys.executable, "manage.py", "rqworker", "high", "default", "low"],
        command_env(FALLBACK_RELAY_INTERVAL_SECONDS="0.3"),
        tmp_path / "worker.log",
    )
    try:
        # No command, no explicit flush: the worker's recorder and housekeeping do it.
        assert wait_for(lambda: ActivityEntry.objects.count() == 1 and Miss.objects.count() == 1, timeout=30), (
            worker.output()
        )
    finally:
        assert worker.stop() == 0
    row = ActivityEntry.objects.get()
    assert (row.automation_id, row.status, row.latency_ms is not None) == (automations["dm"].pk, "sent", True)
    assert Miss.objects.get().text == "hours?"
