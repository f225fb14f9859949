"""/metrics of a real web process (gunicorn) counts what separate worker processes did."""

import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from automations.models import Automation
from devtools.fake_graph_api import FakeGraphAPI
from tests.conftest import ACCOUNT_ID
from tests.instabot.support import Sample, parse_metrics, value
from tests.support.processes import command_env, run_manage
from tests.support.stack import stack_env, start_web, start_worker, wait_for
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload
from webhooks.signatures import sign_body

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def scrape(url: str) -> dict[Sample, float]:
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    return parse_metrics(response.text)


def post_dm(url: str, *, sender: str) -> None:
    body = encode_payload(
        sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text="price", sender_id=sender)
    )
    response = requests.post(
        f"{url}/api/webhooks/instagram",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign_body(body=body, secret=settings.INSTAGRAM_APP_SECRET),
        },
        timeout=5,
    )
    assert response.status_code == 200, response.text


def test_counts_of_a_burst_worker_process_appear_in_the_web_process_metrics(
    graph: FakeGraphAPI, automations: dict[str, Automation], tmp_path: Path
) -> None:
    web, url = start_web(stack_env(redis_url=settings.REDIS_URL), tmp_path / "web.log")
    try:
        for sender in ("s1", "s2", "s3"):
            post_dm(url, sender=sender)
        assert value(scrape(url), "instabot_queue_jobs", queue="high", state="queued") == 3

        result = run_manage("rqworker", "high", "default", "low", "--burst", env=command_env(CONCURRENCY="4"))
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(graph.calls()) == 3

        samples = scrape(url)
        assert value(samples, "instabot_events_total", kind="dm", outcome="replied") == 3
        assert value(samples, "instabot_graph_requests_total", endpoint="messages", outcome="ok") == 3
        assert value(samples, "instabot_graph_request_seconds_count", endpoint="messages") == 3
        assert value(samples, "instabot_cache_requests_total", dataset="workspace", result="miss") == 1
        assert value(samples, "instabot_webhook_requests_total", status="200") == 3
        assert value(samples, "instabot_queue_jobs", queue="high", state="queued") == 0
    finally:
        web.stop()


def test_an_idle_workers_counts_reach_metrics_within_a_second_and_workers_alive_are_counted(
    graph: FakeGraphAPI, automations: dict[str, Automation], tmp_path: Path
) -> None:
    env = stack_env(redis_url=settings.REDIS_URL, CONCURRENCY="4")
    web, url = start_web(env, tmp_path / "web.log")
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        assert wait_for(lambda: value(scrape(url), "instabot_workers") == 1, timeout=30), worker.output()
        post_dm(url, sender="s1")
        assert wait_for(lambda: len(graph.calls()) == 1, timeout=20), worker.output()
        answered_at = graph.calls()[0].at

        # The worker now has nothing to do: its count must go out by itself.
        assert wait_for(
            lambda: value(scrape(url), "instabot_events_total", kind="dm", outcome="replied") == 1,
            timeout=5,
            interval=0.02,
        ), worker.output()
        assert time.time() - answered_at < 1.0
        assert value(scrape(url), "instabot_cache_requests_total", dataset="workspace", result="miss") == 1

        assert worker.stop() == 0
        assert value(scrape(url), "instabot_workers") == 0
    finally:
        if worker.process.poll() is None:
            worker.stop()
        web.stop()
