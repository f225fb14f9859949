"""Cache invalidation, and nothing else: any save or delete of a Workspace or Automation, from the admin,
the REST API or code, makes stale every cache entry that could hold its old or new data, once the
transaction commits (before that a reader would cache the old row again).

The previous account id or workspace of a row being changed is read before the save, so a moved row
invalidates where it was as well as where it is. Writes that bypass signals (QuerySet.update(), raw SQL,
other services) are handled by `manage.py cache_sync`.
"""

from typing import Any

from django.db import transaction

from automations.cache import cache_invalidate
from automations.models import Automation, Workspace

_PREVIOUS = "_instabot_cache_previous"


def _invalidate_on_commit(*, instagram_account_ids: set[str], workspace_ids: set[int]) -> None:
    # robust: the write has committed; a cache outage is logged, not turned into a failed request.
    transaction.on_commit(
        lambda: cache_invalidate(instagram_account_ids=instagram_account_ids, workspace_ids=workspace_ids),
        robust=True,
    )


def workspace_remember_previous(sender: type[Workspace], instance: Workspace, **kwargs: Any) -> None:
    if instance.pk is not None:
        previous = Workspace.objects.filter(pk=instance.pk).values_list("instagram_account_id", flat=True).first()
        setattr(instance, _PREVIOUS, previous)


def workspace_changed(sender: type[Workspace], instance: Workspace, **kwargs: Any) -> None:
    account_ids = {instance.instagram_account_id, getattr(instance, _PREVIOUS, None) or ""}
    _invalidate_on_commit(instagram_account_ids=account_ids - {""}, workspace_ids={instance.pk})


def automation_remember_previous(sender: type[Automation], instance: Automation, **kwargs: Any) -> None:
    if instance.pk is not None:
        previous = Automation.objects.filter(pk=instance.pk).values_list("workspace_id", flat=True).first()
        setattr(instance, _PREVIOUS, previous)


def automation_changed(sender: type[Automation], instance: Automation, **kwargs: Any) -> None:
    workspace_ids = {instance.workspace_id, getattr(instance, _PREVIOUS, None)}
    _invalidate_on_commit(instagram_account_ids=set(), workspace_ids={i for i in workspace_ids if i is not None})
