from typing import Any

import pytest
from django.core.management import CommandError, call_command

from automations.models import Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI
from queueing.queues import get_queue
from tests.conftest import run_worker_burst

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_demo_then_simulate_webhook_gets_the_demo_answered(live_server: Any, graph: FakeGraphAPI) -> None:
    call_command("seed_demo")
    call_command("seed_demo")  # safe to run twice
    assert Workspace.objects.count() == 1
    assert sorted(Automation.objects.values_list("type", flat=True)) == ["comment", "dm", "story"]

    url = f"{live_server.url}/api/webhooks/instagram"
    call_command("simulate_webhook", "--url", url, "--event", "comment", "--text", "Price?")
    call_command("simulate_webhook", "--url", url, "--event", "dm", "--text", "the PRICE")
    assert (get_queue("high").count, get_queue("low").count) == (1, 1)
    run_worker_burst()
    assert [c.path.rsplit("/", 1)[-1] for c in graph.calls()] == ["messages", "replies", "messages"]


def test_simulate_webhook_reports_a_refused_webhook(live_server: Any, tmp_path: Any) -> None:
    body = tmp_path / "broken.json"
    body.write_bytes(b'{"object": "instagram"')
    with pytest.raises(CommandError, match="400"):
        call_command("simulate_webhook", "--url", f"{live_server.url}/api/webhooks/instagram", "--file", str(body))
