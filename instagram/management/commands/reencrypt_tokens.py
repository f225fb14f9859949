from typing import Any

from django.core.management.base import BaseCommand, CommandError

from instagram.tokens import workspace_tokens_reencrypt


class Command(BaseCommand):
    help = (
        "Encrypt every access token again under the newest key of INSTABOT_ENCRYPTION_KEY (the first); "
        "afterwards the older keys can be removed. Also encrypts tokens still stored in plain text."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        outcome = workspace_tokens_reencrypt()
        if outcome.failed:
            raise CommandError(
                f"re-encrypted {outcome.reencrypted} token(s); {len(outcome.failed)} could not be decrypted with any "
                f"configured key (workspaces {', '.join(outcome.failed)}): keep the old key until they are replaced"
            )
        self.stdout.write(f"re-encrypted {outcome.reencrypted} token(s) under the newest key")
