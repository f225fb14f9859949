from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from automations.models import Workspace
from instagram.subscriptions import SubscribeError, workspace_subscribe


class Command(BaseCommand):
    help = "Subscribe a connected Instagram account to webhooks (comments, messages) with its workspace's token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("instagram_account_id", help="The account's id (webhooks' entry[].id).")

    def handle(self, *args: Any, **options: Any) -> None:
        account_id = options["instagram_account_id"].strip()
        workspace = Workspace.objects.filter(instagram_account_id=account_id).first()
        if workspace is None:
            raise CommandError(f"no workspace has Instagram account id {account_id}")
        try:
            workspace_subscribe(workspace=workspace)
        except SubscribeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"subscribed account {account_id} (workspace {workspace.name!r}) to comments, messages")
