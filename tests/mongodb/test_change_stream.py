"""The change-stream follower behind cache_sync on MongoDB: edits made with pymongo reach the listener,
a restart resumes from the saved token, and a token that cannot be resumed means history lost."""

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from bson import ObjectId
from pymongo.database import Database

from automations.models import Automation, Workspace
from instabot.mongodb_changes import TOKENS_COLLECTION, ChangeStreamFollower, ResumeTokenStore
from tests.mongodb.conftest import ON_MONGODB, workspace_document

pytestmark = pytest.mark.skipif(not ON_MONGODB, reason="change streams are MongoDB's")

WATCHED = ["automations_workspace", "automations_automation"]


@dataclass
class Recorder:
    changes: list[tuple[str, Any, Mapping[str, Any] | None]] = field(default_factory=list)
    history_lost: int = 0

    def on_change(
        self, *, collection: str, document_key: Mapping[str, Any], full_document: Mapping[str, Any] | None
    ) -> None:
        self.changes.append((collection, document_key["_id"], full_document))

    def on_history_lost(self) -> None:
        self.history_lost += 1


@pytest.fixture
def followers(mongo: Database[Any]) -> Iterator[Callable[[Recorder], ChangeStreamFollower]]:
    opened: list[ChangeStreamFollower] = []

    def make(listener: Recorder) -> ChangeStreamFollower:
        follower = ChangeStreamFollower(
            database=mongo, collections=WATCHED, listener=listener, name="test", max_wait_seconds=0.2
        )
        follower.open()
        opened.append(follower)
        return follower

    mongo[TOKENS_COLLECTION].delete_many({})
    yield make
    for follower in opened:
        follower.close()
    mongo[TOKENS_COLLECTION].delete_many({})


def poll_until(follower: ChangeStreamFollower, done: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the change did not arrive in time"
        follower.poll()


def test_pymongo_edits_reach_the_listener(
    mongo: Database[Any], followers: Callable[[Recorder], ChangeStreamFollower], automations: dict[str, Automation]
) -> None:
    recorder = Recorder()
    follower = followers(recorder)
    assert recorder.history_lost == 1  # first start: nothing saved, so nothing is known

    inserted = mongo.automations_workspace.insert_one(workspace_document()).inserted_id
    dm = automations["dm"]
    mongo.automations_automation.update_one({"_id": dm.pk}, {"$set": {"reply_text": "changed by Node"}})
    mongo.automations_automation.delete_one({"_id": automations["story"].pk})
    mongo.auth_user.insert_one({"username": "not watched"})
    poll_until(follower, lambda: len(recorder.changes) >= 3)
    follower.poll()

    assert [(c[0], c[1]) for c in recorder.changes] == [
        ("automations_workspace", inserted),
        ("automations_automation", dm.pk),
        ("automations_automation", automations["story"].pk),
    ]
    assert recorder.changes[0][2] is not None and recorder.changes[0][2]["name"] == "Node shop"
    assert recorder.changes[1][2] is not None and recorder.changes[1][2]["reply_text"] == "changed by Node"
    assert recorder.changes[2][2] is None  # deleted: no document left
    assert recorder.history_lost == 1


def test_queryset_update_bypassing_signals_reaches_the_listener(
    followers: Callable[[Recorder], ChangeStreamFollower], automations: dict[str, Automation]
) -> None:
    recorder = Recorder()
    follower = followers(recorder)
    Automation.objects.filter(pk=automations["comment"].pk).update(keywords=["code"])
    poll_until(follower, lambda: bool(recorder.changes))
    assert recorder.changes[0][:2] == ("automations_automation", automations["comment"].pk)
    assert recorder.changes[0][2] is not None and recorder.changes[0][2]["keywords"] == ["code"]


def test_restart_resumes_from_the_saved_token_without_missing_an_edit(
    mongo: Database[Any], followers: Callable[[Recorder], ChangeStreamFollower], workspace: Workspace
) -> None:
    first = Recorder()
    follower = followers(first)
    mongo.automations_workspace.update_one({"_id": workspace.pk}, {"$set": {"name": "seen by the first run"}})
    poll_until(follower, lambda: bool(first.changes))
    follower.close()

    # Edited while nobody follows.
    mongo.automations_workspace.update_one({"_id": workspace.pk}, {"$set": {"name": "edited while stopped"}})
    other = mongo.automations_workspace.insert_one(workspace_document()).inserted_id

    second = Recorder()
    restarted = followers(second)
    poll_until(restarted, lambda: len(second.changes) >= 2)
    restarted.poll()
    assert second.history_lost == 0
    assert [(c[1], c[2] and c[2]["name"]) for c in second.changes] == [
        (workspace.pk, "edited while stopped"),
        (other, "Node shop"),
    ]


def test_a_token_that_cannot_be_resumed_means_history_lost(
    mongo: Database[Any], followers: Callable[[Recorder], ChangeStreamFollower], workspace: Workspace
) -> None:
    # A token of a stream position that never existed: what an oplog rolled past it looks like.
    ResumeTokenStore(database=mongo).save(name="test", token={"_data": "8200000001000000012B0229296E04"})
    recorder = Recorder()
    follower = followers(recorder)
    assert recorder.history_lost == 1

    mongo.automations_workspace.update_one({"_id": workspace.pk}, {"$set": {"is_active": False}})
    poll_until(follower, lambda: bool(recorder.changes))
    assert recorder.changes[0][1] == workspace.pk
    assert isinstance(recorder.changes[0][1], ObjectId)
