"""Dead letters narrowed to one account and one Graph error code: what reconnecting an account replays."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from queueing.dead_letters import dead_letter_list, dead_letter_park
from queueing.queues import get_queue


def park(*, account_id: str, sender: str, code: int) -> None:
    event = {"kind": "dm", "account_id": account_id, "event_id": f"mid-{sender}", "sender_id": sender, "text": "hi"}
    dead_letter_park(event=event, origin_queue="high", reason="test", error={"code": code}, attempts=1)


@pytest.fixture
def letters() -> None:
    park(account_id="A", sender="a1", code=190)
    park(account_id="A", sender="a2", code=551)
    park(account_id="B", sender="b1", code=190)


def test_list_and_replay_only_one_accounts_refused_token_letters(letters: None, capsys: Any) -> None:
    call_command("replay_dead", "--account", "A", "--code", "190")
    assert capsys.readouterr().out.count("account=A") == 1

    call_command("replay_dead", "--all", "--account", "A", "--code", "190")

    assert "replayed 1 dead letter(s)" in capsys.readouterr().out
    assert sorted(letter.event["event_id"] for letter in dead_letter_list()) == ["mid-a2", "mid-b1"]
    [job] = get_queue("high").get_jobs()
    assert job.kwargs["event"]["event_id"] == "mid-a1"


@pytest.mark.django_db
def test_the_admin_page_shows_and_replays_what_its_filter_shows(letters: None) -> None:
    client = Client()
    client.force_login(User.objects.create_user("staff", password="pw-123456", is_staff=True))

    page = client.get("/admin/dead-letters/", {"account": "A", "code": "190"}).content.decode()
    assert "mid-a1" in page and "mid-a2" not in page and "mid-b1" not in page
    assert "(access token refused)" in page

    response = client.post("/admin/dead-letters/", {"replay_all": "1", "account": "A", "code": "190"})

    assert response["Location"] == "/admin/dead-letters/?account=A&code=190"
    assert sorted(letter.event["event_id"] for letter in dead_letter_list()) == ["mid-a2", "mid-b1"]
