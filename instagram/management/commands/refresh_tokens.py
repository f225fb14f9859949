from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from instagram.tokens import RefreshResult, workspace_tokens_refresh_due


class Command(BaseCommand):
    help = (
        "Refresh the long-lived token of every active workspace whose token is older than --min-age-hours "
        "(Meta refreshes tokens at least 24 hours old). Workers also run this once a day by themselves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--min-age-hours", type=float, default=24.0, help="Only tokens at least this old.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["min_age_hours"] < 0:
            raise CommandError("--min-age-hours cannot be negative")
        outcomes = workspace_tokens_refresh_due(min_age=timedelta(hours=options["min_age_hours"]))
        for outcome in outcomes:
            line = f"{outcome.instagram_account_id}  {outcome.workspace_name!r}: {outcome.result} {outcome.detail}"
            self.stdout.write(line.rstrip())
        failed = [o for o in outcomes if o.result in (RefreshResult.FAILED, RefreshResult.REFUSED)]
        refreshed = sum(1 for o in outcomes if o.result == RefreshResult.REFRESHED)
        summary = f"refreshed {refreshed} of {len(outcomes)} token(s) due"
        if failed:
            raise CommandError(f"{summary}; {len(failed)} failed (see above)")
        self.stdout.write(summary)
