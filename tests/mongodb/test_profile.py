"""The MongoDB profile: ObjectId keys everywhere, migrations for every app, ids in the API, documents
written by another service answered by the worker. Tests marked for every database pin what must hold
on all three."""

import re
from importlib import import_module
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from pymongo.database import Database
from rest_framework.test import APIClient

from automations.models import Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI
from tests.conftest import ACCOUNT_ID, run_worker_burst
from tests.mongodb.conftest import ON_MONGODB, server_is_secantusd, workspace_document
from tests.support.webhooks import post_webhook

only_on_mongodb = pytest.mark.skipif(not ON_MONGODB, reason="MongoDB profile only")


@only_on_mongodb
def test_every_model_has_an_object_id_primary_key() -> None:
    auto_keys = {
        model._meta.label: type(model._meta.pk).__name__
        for model in apps.get_models()
        if model._meta.pk is not None and model._meta.pk.auto_created
    }
    assert auto_keys and set(auto_keys.values()) == {"ObjectIdAutoField"}, auto_keys


@only_on_mongodb
def test_every_app_with_an_auto_key_model_has_mongodb_migrations() -> None:
    for app_config in apps.get_app_configs():
        if any(m._meta.pk is not None and m._meta.pk.auto_created for m in app_config.get_models()):
            module = settings.MIGRATION_MODULES.get(app_config.label)
            assert module == f"mongo_migrations.{app_config.label}", app_config.label
            import_module(module)


def test_no_model_change_lacks_a_migration_on_this_database(db: None) -> None:
    # scripts/makemigrations.sh --check does this for SQL and MongoDB in CI; this is the same check
    # from inside each test run, with the settings of the database under test.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_api_ids_are_numbers_on_sql_and_object_id_strings_on_mongodb(api: APIClient) -> None:
    body = {"name": "Shop", "instagram_account_id": ACCOUNT_ID, "access_token": "tok"}
    workspace = api.post("/api/v1/workspaces/", body, format="json").json()
    automation_body = {"workspace": workspace["id"], "name": "N", "type": "dm", "reply_text": "r"}
    automation = api.post("/api/v1/automations/", automation_body, format="json").json()

    if ON_MONGODB:
        assert re.fullmatch(r"[0-9a-f]{24}", workspace["id"]) and re.fullmatch(r"[0-9a-f]{24}", automation["id"])
        assert str(Workspace.objects.get().pk) == workspace["id"]
    else:
        assert isinstance(workspace["id"], int) and isinstance(automation["id"], int)
    assert automation["workspace"] == workspace["id"]
    assert api.get(f"/api/v1/automations/{automation['id']}/").json()["name"] == "N"
    listed = api.get("/api/v1/automations/", {"workspace": workspace["id"]}).json()["results"]
    assert [a["id"] for a in listed] == [automation["id"]]
    # Ids that cannot be a workspace's on this database match nothing and find nothing.
    for wrong in ("abc", "12" if ON_MONGODB else "5f0000000000000000000000"):
        assert api.get("/api/v1/automations/", {"workspace": wrong}).json()["results"] == []
        assert api.get(f"/api/v1/workspaces/{wrong}/").status_code == 404


def test_admin_ordering_by_workspace_name_is_the_same_on_every_database(db: None) -> None:
    # The admin's automation list sorted by its Workspace column orders by the workspace's name, a
    # related field: secantusd is known to get such orderings wrong silently, so this pins them.
    zed = Workspace.objects.create(name="Zed", instagram_account_id="1", access_token="t")
    abe = Workspace.objects.create(name="Abe", instagram_account_id="2", access_token="t")
    for workspace, name in [(zed, "z1"), (abe, "a1"), (zed, "z2"), (abe, "a2")]:
        Automation.objects.create(workspace=workspace, name=name, type="dm", reply_text="r")
    names = list(Automation.objects.order_by("-workspace__name", "name").values_list("name", flat=True))
    if server_is_secantusd():
        # The known divergence, pinned: secantusd ignores the direction of a related-field ordering.
        # Real MongoDB, like SQL, answers as below; the admin's sort by workspace is wrong only here.
        assert names == ["a1", "a2", "z1", "z2"]
    else:
        assert names == ["z1", "z2", "a1", "a2"]
    assert [a.name for a in Automation.objects.order_by("workspace", "name")] == ["a1", "a2", "z1", "z2"]


@only_on_mongodb
def test_worker_answers_with_documents_another_service_wrote(
    mongo: Database[Any], client: Client, graph: FakeGraphAPI
) -> None:
    # A team coming from the Node system keeps its database: documents it wrote are Instabot's data.
    workspace_id = mongo.automations_workspace.insert_one(
        workspace_document(instagram_account_id=ACCOUNT_ID, access_token="node-token")
    ).inserted_id
    now = workspace_document()["created_at"]
    mongo.automations_automation.insert_one(
        {
            "workspace_id": workspace_id,
            "name": "From Node",
            "type": "dm",
            "media_id": "",
            "keywords": ["price"],
            "reply_text": "Prices from Node",
            "public_reply_text": "",
            "position": 100,
            "is_active": True,
            "created_at": now,
            "updated_at": now,
        }
    )
    assert post_webhook(client, "messages__text").status_code == 200
    run_worker_burst()
    [call] = graph.calls()
    assert call.body["message"] == {"text": "Prices from Node"}
    assert call.token == "node-token"
