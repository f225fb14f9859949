"""Logs of a full run (web server and worker processes): JSON lines with LOG_FORMAT=json, one line per
event outcome, and not one token or secret anywhere, even at DEBUG."""

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from automations.models import Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI
from instabot.log_format import JsonFormatter
from queueing.dead_letters import dead_letter_count
from tests.conftest import ACCOUNT_ID, TOKEN
from tests.support.stack import stack_env, start_web, start_worker, wait_for
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload
from webhooks.signatures import sign_body

OTHER_ACCOUNT = "17841400000000002"
EXPIRED_TOKEN = "expired-workspace-token-xyz"
METRICS_TOKEN = "metrics-scrape-token-123"
# The loggers that say what became of an event.
OUTCOME_LOGGERS = {"automations.services", "automations.conversations", "queueing.jobs", "queueing.dead_letters"}


def test_json_formatter_writes_one_object_per_record_with_extras() -> None:
    record = logging.LogRecord("queueing.jobs", logging.WARNING, __file__, 1, "dm %s: %s", ("m.1", "x\ny"), None)
    record.outcome = "deferred"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"], entry["outcome"]) == (
        "WARNING",
        "queueing.jobs",
        "dm m.1: x\ny",
        "deferred",
    )
    assert entry["time"].endswith("+00:00")


def post(url: str, payload: dict[str, Any]) -> None:
    body = encode_payload(payload)
    signature = sign_body(body=body, secret=settings.INSTAGRAM_APP_SECRET)
    response = requests.post(
        f"{url}/api/webhooks/instagram",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        timeout=5,
    )
    assert response.status_code == 200, response.text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_full_run_logs_json_one_line_per_outcome_and_no_secret(
    graph: FakeGraphAPI, automations: dict[str, Automation], tmp_path: Path
) -> None:
    other = Workspace.objects.create(name="Other", instagram_account_id=OTHER_ACCOUNT, access_token=EXPIRED_TOKEN)
    Automation.objects.create(workspace=other, name="any", type="dm", keywords=[], reply_text="hi")
    graph.expire_token(EXPIRED_TOKEN)
    env = stack_env(
        redis_url=settings.REDIS_URL, LOG_FORMAT="json", LOG_LEVEL="DEBUG", METRICS_TOKEN=METRICS_TOKEN, CONCURRENCY="4"
    )
    web, url = start_web(env, tmp_path / "web.log")
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        events = {
            "replied": sample_event_payload(
                kind=EventKind.DM, account_id=ACCOUNT_ID, text="price", event_id="m.replied"
            ),
            "no_match": sample_event_payload(
                kind=EventKind.DM, account_id=ACCOUNT_ID, text="hi", event_id="m.no_match"
            ),
            "skipped": sample_event_payload(
                kind=EventKind.STORY_MENTION, account_id="17840000000000999", text="", event_id="m.skipped"
            ),
            "dead_lettered": sample_event_payload(
                kind=EventKind.DM, account_id=OTHER_ACCOUNT, text="hi", event_id="m.dead_lettered"
            ),
        }
        for payload in events.values():
            post(url, payload)
        assert wait_for(lambda: len(graph.calls()) == 1 and dead_letter_count() == 1, timeout=30), worker.output()
        metrics = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5)
        assert metrics.status_code == 200
        assert requests.get(f"{url}/readyz", timeout=5).status_code == 200
    finally:
        worker.stop()
        web.stop()
    logs = web.output() + worker.output()

    for secret in (
        TOKEN,
        EXPIRED_TOKEN,
        settings.INSTAGRAM_APP_SECRET,
        settings.META_APP_SECRET,
        settings.INSTAGRAM_VERIFY_TOKEN,
        settings.SECRET_KEY,
        METRICS_TOKEN,
    ):
        assert secret not in logs, f"a secret ({secret[:4]}...) is in the logs"

    entries = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    assert {entry["logger"] for entry in entries} >= {"automations.services", "queueing.dead_letters", "rq.worker"}
    # Everything the worker logged through Instabot's logging setup is JSON (other lines: none expected).
    assert [line for line in worker.output().splitlines() if line and not line.startswith("{")] == []
    for outcome in events:
        event_id = f"m.{outcome}"
        lines = [e["message"] for e in entries if e["logger"] in OUTCOME_LOGGERS and event_id in e["message"]]
        assert len(lines) == 1, (outcome, lines)
    web_entries = [json.loads(line) for line in web.output().splitlines() if line.startswith("{")]
    assert all(entry["level"] != "INFO" or "readyz" not in entry["message"] for entry in web_entries)
