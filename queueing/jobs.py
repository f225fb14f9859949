"""RQ jobs. Each takes plain data and calls one service; each is safe to run twice.

What a failure becomes:
- transient (Meta 5xx, codes 1 and 2, no connection): raised, so RQ retries it on the computed
  backoff schedule; after the last attempt it is parked in the dead letters;
- terminal (expired token, permission, unknown user, uncertain outcome): parked at once;
- deferred (send limit or Meta throttling): queued again for later, not counted as an attempt.
"""

import logging
from datetime import timedelta
from typing import Any

from rq import get_current_job

from automations.delivery import SendDeferred, TerminalDeliveryError, TransientDeliveryError
from automations.services import event_handle
from automations.stats import stat_incr
from instabot.metrics import event_outcome_incr
from webhooks.events import InstagramEvent

logger = logging.getLogger(__name__)


def process_instagram_event(event: dict[str, Any]) -> str:
    try:
        return str(event_handle(event=InstagramEvent.from_payload(event)))
    except SendDeferred as deferred:
        return _defer(event, deferred)
    except TransientDeliveryError as exc:
        job = get_current_job()
        if job is not None and job.retries_left:
            event_outcome_incr(kind=str(event.get("kind")), outcome="retried")
            logger.info("%s %s will be retried: %s", event.get("kind"), event.get("event_id"), exc)
            raise
        return _park(event, reason=f"retries exhausted: {exc}", error=exc.error)
    except TerminalDeliveryError as exc:
        return _park(event, reason=str(exc), error=exc.error)


def _park(event: dict[str, Any], *, reason: str, error: dict[str, Any] | None) -> str:
    from queueing.dead_letters import dead_letter_park
    from queueing.services import queue_for_payload

    job = get_current_job()
    attempts = 1
    if job is not None and job.retry_intervals and job.retries_left is not None:
        attempts = len(job.retry_intervals) - job.retries_left + 1
    dead_letter_park(
        event=event,
        origin_queue=job.origin if job is not None else queue_for_payload(event),
        reason=reason,
        error=error,
        attempts=attempts,
    )
    stat_incr(name="dead_lettered")
    event_outcome_incr(kind=str(event.get("kind")), outcome="dead_lettered")
    return "dead_lettered"


def _defer(event: dict[str, Any], deferred: SendDeferred) -> str:
    from queueing.queues import get_queue
    from queueing.services import event_job_data, queue_for_payload

    job = get_current_job()
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
