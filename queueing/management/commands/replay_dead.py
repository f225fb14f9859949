from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queueing.dead_letters import (
    DeadLetter,
    DeliveryUncertain,
    dead_letter_discard,
    dead_letter_list,
    dead_letter_replay,
    dead_letter_replay_all,
    dead_letter_send_anyway,
)


class Command(BaseCommand):
    help = (
        "List dead letters, replay them once the cause is fixed (a new token, say), or decide the "
        "delivery-uncertain ones: --send-anyway (sent once) or --discard."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_ids", nargs="*", help="Dead letters to replay (or to send anyway, or discard).")
        decision = parser.add_mutually_exclusive_group()
        decision.add_argument("--all", action="store_true", help="Replay every dead letter but the uncertain ones.")
        decision.add_argument(
            "--send-anyway",
            action="store_true",
            help="Clear the uncertain mark of these and send each once.",
        )
        decision.add_argument("--discard", action="store_true", help="Drop these; their uncertain sends count as done.")
        parser.add_argument("--account", default="", help="Only the dead letters of this Instagram account id.")
        parser.add_argument(
            "--code", type=int, default=None, help="Only those Meta refused with this Graph error code (190: token)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        job_ids: list[str] = options["job_ids"]
        filters = {"account_id": options["account"], "error_code": options["code"]}
        if options["all"]:
            result = dead_letter_replay_all(**filters)
            self.stdout.write(f"replayed {result.replayed} dead letter(s)")
            if result.left_uncertain:
                self.stdout.write(
                    f"{result.left_uncertain} delivery-uncertain dead letter(s) left for a decision "
                    "(--send-anyway or --discard)"
                )
            return
        if (options["send_anyway"] or options["discard"]) and not job_ids:
            raise CommandError("name the dead letters (job ids) to send anyway or discard")
        if not job_ids:
            self._list(**filters)
            return
        missing, uncertain = [], []
        for job_id in job_ids:
            if options["discard"]:
                outcome = "discarded" if dead_letter_discard(job_id=job_id) else None
            elif options["send_anyway"]:
                new_id = dead_letter_send_anyway(job_id=job_id)
                outcome = f"-> {new_id} (sent anyway)" if new_id else None
            else:
                try:
                    new_id = dead_letter_replay(job_id=job_id)
                except DeliveryUncertain:
                    uncertain.append(job_id)
                    continue
                outcome = f"-> {new_id}" if new_id else None
            if outcome is None:
                missing.append(job_id)
            else:
                self.stdout.write(f"{job_id} {outcome}")
        problems = []
        if uncertain:
            problems.append(
                f"delivery uncertain, not replayed (use --send-anyway or --discard): {', '.join(uncertain)}"
            )
        if missing:
            problems.append(f"not in the dead letters: {', '.join(missing)}")
        if problems:
            raise CommandError("; ".join(problems))

    def _list(self, *, account_id: str, error_code: int | None) -> None:
        letters = dead_letter_list(account_id=account_id, error_code=error_code)
        uncertain = [letter for letter in letters if letter.uncertain]
        others = [letter for letter in letters if not letter.uncertain]
        self.stdout.write(
            f"delivery uncertain ({len(uncertain)}): Meta may have sent these; check the conversation, "
            "then --send-anyway or --discard"
        )
        for letter in uncertain:
            self.stdout.write(_line(letter))
        self.stdout.write(f"other dead letters ({len(others)}): replay once the cause is fixed")
        for letter in others:
            self.stdout.write(_line(letter))


def _line(letter: DeadLetter) -> str:
    event = letter.event
    return (
        f"  {letter.job_id}  {event.get('kind')} {event.get('event_id')} "
        f"account={event.get('account_id')}  {letter.reason}"
    )
