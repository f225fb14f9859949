"""RQ jobs. Each takes plain data and calls one service; each is safe to run twice.

What a failure becomes:
- transient (Meta 5xx, codes 1 and 2, no connection made): raised, so RQ retries it on the computed
  backoff schedule; after the last attempt it is parked in the dead letters;
- terminal (expired token, permission, unknown user) and uncertain (the request may have reached
  Meta): parked at once;
- deferred (send limit or Meta throttling): queued again for later, not counted as an attempt.

The worker engine (queueing/workers.py) awaits `aprocess_instagram_event` on its event loop; any
other RQ worker calls `process_instagram_event`, which runs the same code on a loop of its own.
"""

import logging
from datetime import timedelta
from typing import Any

from rq import get_current_job
from rq.job import Job

from automations.context import EventContext, run_with_context
from automations.delivery import SendDeferred, TerminalDeliveryError, TransientDeliveryError
from automations.services import aevent_handle
from automations.stats import stat_incr
from instabot.metrics import event_outcome_incr
from queueing.dead_letters import dead_letter_park
from queueing.queues import get_queue
from queueing.services import event_job_data, queue_for_payload
from webhooks.events import InstagramEvent

logger = logging.getLogger(__name__)


def process_instagram_event(event: dict[str, Any]) -> str:
    job = get_current_job()
    return run_with_context(lambda context: aprocess_instagram_event(context=context, event=event, job=job))


async def aprocess_instagram_event(*, context: EventContext, event: dict[str, Any], job: Job | None) -> str:
    try:
        return str(await aevent_handle(context=context, event=InstagramEvent.from_payload(event)))
    except SendDeferred as exc:
        deferred = exc
        return await context.run_sync(lambda: _defer(event, deferred=deferred, job=job))
    except TransientDeliveryError as exc:
        if job is not None and job.retries_left:
            event_outcome_incr(kind=str(event.get("kind")), outcome="retried")
            logger.info("%s %s will be retried: %s", event.get("kind"), event.get("event_id"), exc)
            raise
        reason, error = f"retries exhausted: {exc}", exc.error
    except TerminalDeliveryError as exc:
        reason, error = str(exc), exc.error
    return await context.run_sync(lambda: _park(event, reason=reason, error=error, job=job))


def _park(event: dict[str, Any], *, reason: str, error: dict[str, Any] | None, job: Job | None) -> str:
    attempts = 1
    if job is not None and job.retry_intervals and job.retries_left is not None:
        attempts = len(job.retry_intervals) - job.retries_left + 1
    parked = dead_letter_park(
        event=event,
        origin_queue=job.origin if job is not None else queue_for_payload(event),
        reason=reason,
        error=error,
        attempts=attempts,
    )
    # None: a dead letter of this event already waits (a redelivery met the same fate).
    outcome = "dead_lettered" if parked is not None else "duplicate"
    stat_incr(name=outcome)
    event_outcome_incr(kind=str(event.get("kind")), outcome=outcome)
    return outcome


def _defer(event: dict[str, Any], *, deferred: SendDeferred, job: Job | None) -> str:
    queue = get_queue(job.origin if job is not None else queue_for_payload(event))
    data = event_job_data(event)
    queue.enqueue_in(
        timedelta(seconds=max(1.0, deferred.delay_seconds)),
        data.func,
        kwargs=data.kwargs,
        job_timeout=data.timeout,
        result_ttl=data.result_ttl,
        failure_ttl=data.failure_ttl,
        description=data.description,
        retry=data.retry,
    )
    stat_incr(name="deferred")
    event_outcome_incr(kind=str(event.get("kind")), outcome="deferred")
    logger.info("%s %s deferred: %s", event.get("kind"), event.get("event_id"), deferred)
    return "deferred"
