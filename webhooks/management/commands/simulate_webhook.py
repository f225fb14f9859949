"""Sign a sample webhook exactly as Meta does and POST it to a running Instabot."""

from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload
from webhooks.signatures import sign_body

DEMO_ACCOUNT_ID = "17841400000000001"


class Command(BaseCommand):
    help = "Sign a sample Instagram webhook with INSTAGRAM_APP_SECRET and POST it to Instabot."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/api/webhooks/instagram")
        parser.add_argument("--event", choices=[k.value for k in EventKind], default=EventKind.DM.value)
        parser.add_argument("--text", default="price?")
        parser.add_argument("--account", default=DEMO_ACCOUNT_ID, help="The Instagram account id (entry.id).")
        parser.add_argument("--sender", default="1234567890123456")
        parser.add_argument("--media", default="17900000000000001")
        parser.add_argument("--file", type=Path, help="Send this JSON file's bytes instead of a built sample.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["file"]:
            body = options["file"].read_bytes()
        else:
            body = encode_payload(
                sample_event_payload(
                    kind=EventKind(options["event"]),
                    account_id=options["account"],
                    text=options["text"],
                    sender_id=options["sender"],
                    media_id=options["media"],
                )
            )
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign_body(body=body, secret=settings.INSTAGRAM_APP_SECRET),
        }
        try:
            response = requests.post(options["url"], data=body, headers=headers, timeout=10)
        except requests.RequestException as exc:
            raise CommandError(f"Could not reach {options['url']}: {type(exc).__name__}") from None
        self.stdout.write(f"{response.status_code} {response.text[:200]}")
        if response.status_code != 200:
            raise CommandError(f"Instabot answered {response.status_code}.")
