"""A person decides delivery-uncertain dead letters on /admin/dead-letters/, in headless Chromium."""

from collections import Counter
from typing import Any

from django.test import Client

from automations.models import Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI, ScriptedAnswer, dropped_answer
from queueing.dead_letters import dead_letter_list
from tests.conftest import ACCOUNT_ID, TOKEN
from tests.support.browser import BROWSER_MARKS, run_worker_process
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = BROWSER_MARKS


def post_dm(client: Client, sender: str) -> None:
    payload = sample_event_payload(
        kind=EventKind.DM, account_id=ACCOUNT_ID, text="hi", sender_id=sender, event_id=f"m.{sender}"
    )
    assert post_webhook(client, encode_payload(payload)).status_code == 200


def sends(graph: FakeGraphAPI) -> Counter[str]:
    return Counter(call.body["recipient"]["id"] for call in graph.calls())


def test_uncertain_dead_letters_are_shown_apart_and_sent_anyway_or_discarded(page: Any, graph: FakeGraphAPI) -> None:
    workspace = Workspace.objects.create(name="Shop", instagram_account_id=ACCOUNT_ID, access_token=TOKEN)
    Automation.objects.create(workspace=workspace, name="any", type="dm", keywords=[], reply_text="hello")
    client = Client()
    # Of u0, u1, u2 two lose their answer after Meta got the request (whichever arrive first); u3 meets
    # an expired token.
    graph.answer_next(dropped_answer(), dropped_answer(), ScriptedAnswer())
    for sender in ("u0", "u1", "u2"):
        post_dm(client, sender)
    run_worker_process()
    graph.expire_token(TOKEN)
    post_dm(client, "u3")
    run_worker_process()
    graph.state.expired_tokens.clear()
    # Meta's refusal marked the token refused (its sends park at once); a new one clears that.
    workspace.refresh_from_db()
    workspace.access_token = "a-new-token"
    workspace.save()
    assert sends(graph) == Counter({"u0": 1, "u1": 1, "u2": 1})
    first, second = sorted(call.body["recipient"]["id"] for call in graph.calls() if call.fault)

    url = f"{page.live_server_url}/admin/dead-letters/"
    page.goto(url)
    uncertain = page.locator("#uncertain_list tbody tr")
    assert uncertain.count() == 2
    assert all("delivery uncertain" in text for text in uncertain.all_inner_texts())
    others = page.locator("#result_list tbody tr")
    assert others.count() == 1 and "code 190" in others.inner_text()
    # Only the uncertain ones offer the decision; the others are replayed.
    assert page.locator("#result_list button", has_text="Send anyway").count() == 0

    page.locator("#uncertain_list tr", has_text=f"m.{first}").get_by_role("button", name="Send anyway").click()
    page.wait_for_selector(".messagelist .success")
    assert "queued once" in page.inner_text(".messagelist")
    assert page.locator("#uncertain_list tbody tr", has_text=f"m.{first}").count() == 0
    run_worker_process()
    assert sends(graph)[first] == 2  # the person's decision: sent once more, once

    page.locator("#uncertain_list tr", has_text=f"m.{second}").get_by_role("button", name="Discard").click()
    page.wait_for_selector(".messagelist .success")
    assert "Discarded 1" in page.inner_text(".messagelist")
    assert "None." in page.inner_text("#uncertain_list")
    post_dm(client, second)  # Meta delivers it again: a discarded send stays unsent
    run_worker_process()
    assert sends(graph)[second] == 1

    page.click("input[name=replay_all]")
    page.wait_for_selector(".messagelist .success")
    run_worker_process()
    expected = Counter({"u0": 1, "u1": 1, "u2": 1, "u3": 1})
    expected[first] = 2
    assert sends(graph) == expected
    assert dead_letter_list() == []
    page.goto(url)
    assert "No dead letters." in page.inner_text("#result_list")
