from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing.dead_letters import dead_letter_list, dead_letter_replay, dead_letter_replay_all


class Command(BaseCommand):
    help = "List dead letters, or queue them again once the cause is fixed (a new token, say)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_ids", nargs="*", help="Dead letters to replay.")
        parser.add_argument("--all", action="store_true", help="Replay every dead letter (listed by the filters).")
        parser.add_argument("--account", default="", help="Only the dead letters of this Instagram account id.")
        parser.add_argument(
            "--code", type=int, default=None, help="Only those Meta refused with this Graph error code (190: token)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        filters = {"account_id": options["account"], "error_code": options["code"]}
        if options["all"]:
            self.stdout.write(f"replayed {dead_letter_replay_all(**filters)} dead letter(s)")
            return
        if not options["job_ids"]:
            for letter in dead_letter_list(**filters):
                event = letter.event
                self.stdout.write(
                    f"{letter.job_id}  {event.get('kind')} {event.get('event_id')} "
                    f"account={event.get('account_id')}  {letter.reason}"
                )
            return
        missing = []
        for job_id in options["job_ids"]:
            new_id = dead_letter_replay(job_id=job_id)
            if new_id is None:
                missing.append(job_id)
            else:
                self.stdout.write(f"{job_id} -> {new_id}")
        if missing:
            raise CommandError(f"not in the dead letters: {', '.join(missing)}")
