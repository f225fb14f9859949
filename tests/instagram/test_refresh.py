"""`manage.py refresh_tokens`: tokens renew themselves, and the next send uses the new one."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from automations.models import Automation, TokenStatus, Workspace
from automations.selectors import workspace_get_active_by_instagram_id
from automations.tokens import workspace_update_if_unchanged
from devtools.fake_graph_api import FakeGraphAPI, graph_error
from tests.conftest import ACCOUNT_ID, run_worker_burst
from tests.support.processes import run_manage
from tests.support.webhooks import post_webhook

pytestmark = pytest.mark.django_db


def workspace_with_token_of_age(graph: FakeGraphAPI, *, account_id: str, hours: float, **fields: Any) -> Workspace:
    token = graph.issue_token(user_id=account_id)
    workspace = Workspace.objects.create(name=f"Shop {account_id}", instagram_account_id=account_id, access_token=token)
    issued = timezone.now() - timedelta(hours=hours)
    Workspace.objects.filter(pk=workspace.pk).update(
        **{"token_issued_at": issued, "token_expires_at": issued + timedelta(days=60), **fields}
    )
    return Workspace.objects.get(pk=workspace.pk)


def test_refresh_renews_tokens_older_than_a_day_and_the_next_send_uses_the_new_one(
    graph: FakeGraphAPI, django_capture_on_commit_callbacks: Any
) -> None:
    old = workspace_with_token_of_age(graph, account_id=ACCOUNT_ID, hours=30)
    young = workspace_with_token_of_age(graph, account_id="1784", hours=2)
    Automation.objects.create(workspace=old, name="DM", type="dm", keywords=["price"], reply_text="Prices")
    # The worker has the old token cached.
    cached = workspace_get_active_by_instagram_id(instagram_account_id=ACCOUNT_ID)
    assert cached is not None and cached.access_token == old.access_token

    with django_capture_on_commit_callbacks(execute=True):
        call_command("refresh_tokens")

    refreshed = Workspace.objects.get(pk=old.pk)
    assert refreshed.access_token != old.access_token
    assert graph.token_account(refreshed.access_token) == ACCOUNT_ID
    assert refreshed.token_issued_at is not None and timezone.now() - refreshed.token_issued_at < timedelta(minutes=1)
    assert refreshed.token_expires_at is not None
    assert refreshed.token_expires_at - timezone.now() > timedelta(days=59)
    assert Workspace.objects.get(pk=young.pk).access_token == young.access_token
    [request] = graph.requests("refresh_access_token")
    assert (request.token, request.params) == (old.access_token, {"grant_type": "ig_refresh_token"})

    assert post_webhook(Client(), "messages__text").status_code == 200
    run_worker_burst()
    [send] = graph.calls()
    assert send.token == refreshed.access_token


def test_min_age_hours_chooses_which_tokens_are_due(graph: FakeGraphAPI, capsys: Any) -> None:
    young = workspace_with_token_of_age(graph, account_id=ACCOUNT_ID, hours=2)

    call_command("refresh_tokens", "--min-age-hours", "1")

    assert Workspace.objects.get(pk=young.pk).access_token != young.access_token
    assert "refreshed 1 of 1 token(s) due" in capsys.readouterr().out


def test_refused_expired_and_inactive_workspaces_are_not_refreshed(graph: FakeGraphAPI, capsys: Any) -> None:
    workspace_with_token_of_age(graph, account_id="1", hours=30, token_refused_at=timezone.now())
    workspace_with_token_of_age(graph, account_id="2", hours=30, token_expires_at=timezone.now() - timedelta(days=1))
    workspace_with_token_of_age(graph, account_id="3", hours=30, is_active=False)

    call_command("refresh_tokens")

    assert graph.requests("refresh_access_token") == []
    assert "refreshed 0 of 0 token(s) due" in capsys.readouterr().out


def test_a_token_meta_refuses_on_refresh_is_marked_expired_and_the_command_fails(graph: FakeGraphAPI) -> None:
    refused = workspace_with_token_of_age(graph, account_id=ACCOUNT_ID, hours=30)
    other = workspace_with_token_of_age(graph, account_id="1784", hours=30)
    graph.expire_token(refused.access_token)

    with pytest.raises(CommandError, match=r"refreshed 1 of 2 token\(s\) due; 1 failed"):
        call_command("refresh_tokens")

    assert Workspace.objects.get(pk=refused.pk).token_status == TokenStatus.EXPIRED
    assert Workspace.objects.get(pk=refused.pk).access_token == refused.access_token
    assert Workspace.objects.get(pk=other.pk).access_token != other.access_token


def test_a_transient_failure_leaves_the_token_as_it_was(graph: FakeGraphAPI) -> None:
    workspace = workspace_with_token_of_age(graph, account_id=ACCOUNT_ID, hours=30)
    graph.answer_next_at("refresh_access_token", graph_error(2, "Service temporarily unavailable", status=503))

    with pytest.raises(CommandError, match="1 failed"):
        call_command("refresh_tokens")

    after = Workspace.objects.get(pk=workspace.pk)
    assert (after.access_token, after.token_status) == (workspace.access_token, TokenStatus.OK)


def test_a_token_saved_while_a_refresh_was_under_way_is_kept(graph: FakeGraphAPI) -> None:
    workspace = workspace_with_token_of_age(graph, account_id=ACCOUNT_ID, hours=30)
    seen = workspace.updated_at  # as a refresh read the row
    staff_copy = Workspace.objects.get(pk=workspace.pk)
    staff_copy.access_token = "typed-in-by-staff"
    staff_copy.save()

    written = workspace_update_if_unchanged(
        workspace_id=workspace.pk,
        instagram_account_id=ACCOUNT_ID,
        seen_updated_at=seen,
        fields={"access_token": "from-the-refresh"},
    )

    assert written is False
    assert Workspace.objects.get(pk=workspace.pk).access_token == "typed-in-by-staff"


def test_min_age_hours_must_not_be_negative(db: None) -> None:
    with pytest.raises(CommandError, match="cannot be negative"):
        call_command("refresh_tokens", "--min-age-hours", "-1")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_refresh_tokens_as_a_process_never_prints_a_token(graph: FakeGraphAPI) -> None:
    workspace = workspace_with_token_of_age(graph, account_id=ACCOUNT_ID, hours=30)

    result = run_manage("refresh_tokens")

    assert result.returncode == 0, result.stderr
    new_token = Workspace.objects.get(pk=workspace.pk).access_token
    assert f"{ACCOUNT_ID}  'Shop {ACCOUNT_ID}': refreshed expires in 59 days" in result.stdout
    for token in (workspace.access_token, new_token):
        assert token not in result.stdout + result.stderr
