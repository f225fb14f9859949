"""Create a demo workspace, automations and an admin user, for the Quick start. Safe to run twice."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from automations.services import demo_data_create


class Command(BaseCommand):
    help = "Create a demo workspace with DM, story and comment automations, and a staff user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="admin")
        parser.add_argument(
            "--accounts", type=int, default=1, help="How many demo workspaces (Instagram accounts) to create."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = demo_data_create(
            username=options["username"], password=options["password"], accounts=options["accounts"]
        )
        self.stdout.write(
            f"Demo workspace {workspace.name!r} (Instagram account {workspace.instagram_account_id}) is ready; "
            f"admin user {options['username']!r}."
        )
