"""`ConcurrentWorker`: one RQ worker process that keeps up to `CONCURRENCY` jobs in flight.

Every Instabot job waits on one Graph API call, so a process that runs one job at a time idles on the
network. This worker keeps RQ's job model (status, started/finished/failed registries, `Retry`,
timeouts, exception handlers, `--burst`, the worker hash the dashboard reads) and changes only how jobs
are taken and run:

- the main thread dequeues while a slot is free, always highest queue first, then hands each job to
  one of `concurrency` threads that run RQ's own `perform_job`;
- jobs are popped and marked started in batches (one round trip each for as many jobs as there are
  free slots), and a finished job costs one MULTI/EXEC instead of RQ's WATCH + read + MULTI/EXEC,
  separate heartbeats and state writes;
- SIGTERM stops dequeuing, lets the jobs in flight finish within `stop_grace_seconds`, then exits; a
  second signal exits at once and leaves unfinished jobs in the started registry, where RQ's
  maintenance fails (or retries) them as it does for any dead worker.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import logging
import queue as stdlib_queue
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

import redis
from django.conf import settings
from django.db import connections
from redis.commands.core import Script
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.rate_limit import release_slot
from rq.registry import StartedJobRegistry
from rq.results import Result
from rq.timeouts import BaseDeathPenalty, JobTimeoutException
from rq.utils import as_text, now
from rq.worker import DequeueStrategy, SimpleWorker, WorkerStatus

from automations.activity import activity_flush
from automations.stats import stats_flush

logger = logging.getLogger(__name__)

# How long the dispatcher blocks on an empty queue or a full pool before it looks at stop requests,
# heartbeats and maintenance again.
POLL_SECONDS = 1.0
HEARTBEAT_EVERY_SECONDS = 15.0


class WatchdogDeathPenalty(BaseDeathPenalty):
    """Job timeouts for threads: one shared watchdog thread raises the timeout in the job's thread.

    RQ's `TimerDeathPenalty` does the same with a new `threading.Timer` thread per job; at thousands
    of jobs a second, starting those threads costs more CPU than the jobs. Like it, the exception is
    raised when the thread next runs Python code, so a job blocked in a socket read times out when
    the read returns (the Graph client's own timeouts bound that).
    """

    _lock = threading.Lock()
    _wakeup = threading.Condition(_lock)
    _heap: list[tuple[float, int, WatchdogDeathPenalty]] = []
    _counter = itertools.count()
    _thread: threading.Thread | None = None

    def __init__(self, timeout: float, exception: type[BaseException] = JobTimeoutException, **kwargs: Any) -> None:
        super().__init__(timeout, exception, **kwargs)
        self._thread_id = threading.get_ident()
        self._armed = False
        message = f"Task exceeded maximum timeout value ({timeout} seconds)"

        # PyThreadState_SetAsyncExc takes a class, not an instance: give the class its message.
        class _Timeout(exception):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any) -> None:
                super().__init__(message)

        _Timeout.__name__ = exception.__name__
        _Timeout.__qualname__ = exception.__qualname__
        self._raise = _Timeout

    def setup_death_penalty(self) -> None:
        if self._timeout <= 0:
            return
        cls = type(self)
        with cls._lock:
            self._armed = True
            heapq.heappush(cls._heap, (time.monotonic() + self._timeout, next(cls._counter), self))
            if cls._thread is None or not cls._thread.is_alive():
                cls._thread = threading.Thread(target=cls._watch, name="rq-job-timeouts", daemon=True)
                cls._thread.start()
            cls._wakeup.notify()

    def cancel_death_penalty(self) -> None:
        # The heap entry stays until its deadline; disarming it is enough and costs no heap work.
        with type(self)._lock:
            self._armed = False

    @classmethod
    def _watch(cls) -> None:
        with cls._lock:
            while True:
                if not cls._heap:
                    cls._wakeup.wait()
                    continue
                deadline, _, penalty = cls._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    cls._wakeup.wait(delay)
                    continue
                heapq.heappop(cls._heap)
                if penalty._armed:
                    penalty._armed = False
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(penalty._thread_id), ctypes.py_object(penalty._raise)
                    )


# Pop up to ARGV[1] job ids, strictly in KEYS order (highest priority first), and return each with
# its queue index and job hash: one round trip for a whole batch instead of LPOP per queue + HGETALL.
_POP_BATCH_LUA = """
local out = {}
local want = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if want <= 0 then break end
  local ids = redis.call('LPOP', key, want)
  if ids then
    for _, id in ipairs(ids) do
      out[#out + 1] = i
      out[#out + 1] = id
      out[#out + 1] = redis.call('HGETALL', ARGV[2] .. id)
    end
    want = want - #ids
  end
end
return out
"""


class ConcurrentWorker(SimpleWorker):
    """An RQ worker running up to `concurrency` jobs at once in threads of one process."""

    death_penalty_class = WatchdogDeathPenalty
    # RQ logs two INFO lines per job on top of the job's own; at thousands of jobs a second that is
    # a large share of the CPU. Per-job lines go to DEBUG here; failures stay at ERROR.
    log_result_lifespan = False

    def __init__(
        self,
        *args: Any,
        concurrency: int | None = None,
        stop_grace_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.concurrency = max(1, concurrency if concurrency is not None else settings.CONCURRENCY)
        self.stop_grace_seconds = (
            stop_grace_seconds if stop_grace_seconds is not None else settings.WORKER_STOP_GRACE_SECONDS
        )
        self._slots_lock = threading.Condition()
        self._in_flight = 0
        self._handoff: stdlib_queue.SimpleQueue[tuple[Job, Queue, Execution] | None] = stdlib_queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Every job thread may hold a Redis connection at once, plus the dispatcher and pubsub.
        pool = self.connection.connection_pool
        pool.max_connections = max(getattr(pool, "max_connections", 0) or 0, self.concurrency + 20)
        self._pop_batch: Script = self.connection.register_script(_POP_BATCH_LUA)
        self._last_heartbeat_at = 0.0
        self._force_stop = False

    # --- the dispatcher (main thread) -------------------------------------------------------------

    def work(
        self,
        burst: bool = False,
        logging_level: str | None = None,
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
        max_jobs: int | None = None,
        max_idle_time: int | None = None,
        with_scheduler: bool = False,
        dequeue_strategy: DequeueStrategy = DequeueStrategy.DEFAULT,
    ) -> bool:
        """Dequeue and run jobs until the queues are empty (`burst`), a stop is requested, or
        `max_jobs` / `max_idle_time` is reached. Returns whether any job was started."""
        if dequeue_strategy != DequeueStrategy.DEFAULT:
            raise ValueError("ConcurrentWorker dequeues in strict priority order only.")
        self.bootstrap(logging_level, date_format, log_format)
        if with_scheduler:
            self._start_scheduler(burst, logging_level, date_format, log_format)
        self._install_signal_handlers()
        self._start_threads()
        started = 0
        try:
            started = self._dispatch(burst=burst, max_jobs=max_jobs, max_idle_time=max_idle_time)
            self._wait_for_jobs_in_flight()
        finally:
            self._stop_threads()
            self.teardown()
        if self._force_stop:
            raise SystemExit(1)
        return started > 0

    def _dispatch(self, *, burst: bool, max_jobs: int | None, max_idle_time: int | None) -> int:
        started = 0
        idle_since = time.monotonic()
        suspension_checked_at = 0.0
        backoff = 1.0
        while True:
            if self._stop_requested or self._force_stop:
                self.log.info("Worker %s: stopping on request", self.name)
                self.set_shutdown_requested_date()
                return started
            # `rq suspend` is a Redis read; once per POLL_SECONDS is soon enough, not once per batch.
            if time.monotonic() - suspension_checked_at >= POLL_SECONDS:
                self.check_for_suspension(burst)
                suspension_checked_at = time.monotonic()
            self._heartbeat_if_due()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()
            free = self._wait_for_free_slots(timeout=POLL_SECONDS)
            if max_jobs is not None:
                free = min(free, max_jobs - started)
                if free <= 0:
                    self.log.info("Worker %s: finished executing %d jobs, quitting", self.name, started)
                    return started
            if free == 0:
                continue
            try:
                batch = self._dequeue(free, block=not burst)
            except redis.RedisError as exc:
                self.log.error("Worker %s: Redis unavailable (%s), retrying in %.0f s", self.name, exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_connection_wait_time)
                continue
            backoff = 1.0
            if batch:
                self._start(batch)
                started += len(batch)
                idle_since = time.monotonic()
                continue
            # Nothing waiting. A job in flight may still requeue itself (Retry), so burst mode only
            # ends once none is in flight and the queues are still empty.
            if self._in_flight:
                idle_since = time.monotonic()
                if burst:
                    self._wait_for_a_job_to_finish(timeout=POLL_SECONDS)
                continue
            if self.get_state() != WorkerStatus.IDLE:
                self.set_state(WorkerStatus.IDLE)
            if burst:
                self.log.info("Worker %s: done, quitting", self.name)
                return started
            if max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time:
                self.log.info("Worker %s: idle for %d seconds, quitting", self.name, max_idle_time)
                return started

    def _dequeue(self, count: int, *, block: bool) -> list[tuple[Job, Queue]]:
        """Up to `count` jobs, highest queue first; blocks up to POLL_SECONDS when all are empty."""
        queues = self._ordered_queues
        prefix = self.job_class.redis_job_namespace_prefix
        raw: list[Any] = self._pop_batch(keys=[q.key for q in queues], args=[count, prefix])
        found: list[tuple[Queue, Any, Any]] = [
            (queues[int(raw[i]) - 1], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)
        ]
        if not found and block:
            popped: Any = self.connection.blmpop(
                POLL_SECONDS, len(queues), *[q.key for q in queues], direction="LEFT", count=count
            )
            if popped:
                key, ids = popped
                queue = next(q for q in queues if q.key == as_text(key))
                with self.connection.pipeline(transaction=False) as pipe:
                    for job_id in ids:
                        pipe.hgetall(prefix + as_text(job_id))
                    hashes = pipe.execute()
                found = [(queue, job_id, data) for job_id, data in zip(ids, hashes, strict=True)]
        batch = []
        for queue, job_id, data in found:
            if not data:
                continue  # deleted while it waited; RQ skips these too
            job = self.job_class(as_text(job_id), connection=self.connection, serializer=self.serializer)
            job.restore(dict(zip(data[::2], data[1::2], strict=True)) if isinstance(data, list) else data)
            job.redis_server_version = self.get_redis_server_version()
            self.log.debug("Worker %s: %s: %s (%s)", self.name, queue.name, job.description, job.id)
            batch.append((job, queue))
        return batch

    def _start(self, batch: Sequence[tuple[Job, Queue]]) -> None:
        """Mark a batch started (executions, started registry, job status) in one MULTI/EXEC, then run it."""
        executions = []
        with self.connection.pipeline() as pipe:
            for job, _queue in batch:
                ttl = self.get_heartbeat_ttl(job)
                execution = Execution.create(job, ttl, pipeline=pipe, worker_name=self.name)
                job.prepare_for_execution(self.name, pipeline=pipe)
                pipe.persist(job.key)
                executions.append(execution)
            if self.get_state() != WorkerStatus.BUSY:
                self.set_state(WorkerStatus.BUSY, pipeline=pipe)
            pipe.execute()
        with self._slots_lock:
            self._in_flight += len(batch)
        for (job, queue), execution in zip(batch, executions, strict=True):
            self.executions[execution.id] = execution
            self._handoff.put((job, queue, execution))

    def _wait_for_free_slots(self, *, timeout: float) -> int:
        with self._slots_lock:
            self._slots_lock.wait_for(lambda: self._in_flight < self.concurrency, timeout)
            return max(0, self.concurrency - self._in_flight)

    def _wait_for_a_job_to_finish(self, *, timeout: float) -> None:
        with self._slots_lock:
            in_flight = self._in_flight
            self._slots_lock.wait_for(lambda: self._in_flight < in_flight, timeout)

    def _wait_for_jobs_in_flight(self) -> None:
        """After a stop request: let the jobs in flight finish, for at most the grace period."""
        deadline = time.monotonic() + self.stop_grace_seconds
        with self._slots_lock:
            if self._in_flight:
                self.log.info("Worker %s: waiting for %d job(s) in flight", self.name, self._in_flight)
            while self._in_flight and not self._force_stop:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.log.warning(
                        "Worker %s: %d job(s) still running after %.0f s; leaving them to RQ's abandoned-job recovery",
                        self.name,
                        self._in_flight,
                        self.stop_grace_seconds,
                    )
                    return
                self._slots_lock.wait(min(left, POLL_SECONDS))

    def _heartbeat_if_due(self) -> None:
        # RQ heartbeats before and after every job; the worker key lives for minutes, so a timed
        # heartbeat from the dispatcher keeps it alive for a fraction of the round trips.
        if time.monotonic() - self._last_heartbeat_at >= HEARTBEAT_EVERY_SECONDS:
            with self.connection.pipeline() as pipe:
                self.heartbeat(pipeline=pipe)
                pipe.execute()
            self._last_heartbeat_at = time.monotonic()

    # --- signals ------------------------------------------------------------------------------------

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """First SIGTERM/SIGINT: take no more jobs, finish those in flight (warm shutdown).

        Only flags are set here, never a lock or a Redis call: the main thread may hold either. The
        dispatcher sees the flag within POLL_SECONDS.
        """
        self.log.info("Worker %s: warm shut down requested, finishing jobs in flight", self.name)
        self._shutdown_requested_date = now()
        signal.signal(signal.SIGINT, self.request_force_stop)
        signal.signal(signal.SIGTERM, self.request_force_stop)
        self._stop_requested = True

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        """Second signal: exit within POLL_SECONDS, without waiting for jobs in flight.

        Not by raising here: that could drop jobs the dispatcher has popped but not yet marked
        started. Unfinished jobs stay in the started registry, recoverable.
        """
        if self._shutdown_requested_date and (now() - self._shutdown_requested_date).total_seconds() < 1:
            return  # the same stop delivered twice (process group and pool), as RQ treats it
        self.log.warning("Worker %s: cold shut down with %d job(s) in flight", self.name, self._in_flight)
        self._force_stop = True

    # --- job threads ---------------------------------------------------------------------------------

    def _start_threads(self) -> None:
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._run_jobs, name=f"rq-job-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _stop_threads(self) -> None:
        if self._force_stop or self._in_flight:
            return  # daemon threads die with the process; their jobs stay recoverable
        for _ in self._threads:
            self._handoff.put(None)
        deadline = time.monotonic() + POLL_SECONDS
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run_jobs(self) -> None:
        while True:
            item = self._handoff.get()
            if item is None:
                break
            job, queue, execution = item
            try:
                self.perform_job(job, queue, execution)
            except BaseException:  # noqa: B036 - a job thread must survive anything a job leaves behind
                self.log.exception("Worker %s: unexpected error around job %s", self.name, job.id)
            finally:
                self.executions.pop(execution.id, None)
                with self._slots_lock:
                    self._in_flight -= 1
                    self._slots_lock.notify_all()
        connections.close_all()

    # --- per-job bookkeeping, with fewer round trips than RQ's -------------------------------------

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """Already done for the whole batch in `_start`."""

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        job.ended_at = now()
        # RQ refreshes the job's heartbeat here so a slow callback does not look abandoned; without
        # callbacks that is one round trip for nothing.
        if job.success_callback or job.failure_callback:
            job.heartbeat(now(), heartbeat_ttl)

    def handle_job_success(
        self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry, execution: Execution
    ) -> None:
        """RQ's success bookkeeping in one MULTI/EXEC.

        RQ WATCHes the job's dependents, reads them, then commits (three round trips). Reading the
        dependents inside the same transaction that marks the job finished is as safe: an enqueue
        that sees the job unfinished added its dependent before this transaction, so it is read here;
        one that runs after sees it finished. Jobs that have dependents or repeats take RQ's own path.
        """
        if job.repeats_left:
            super().handle_job_success(job, queue, started_job_registry, execution)
            return
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline() as pipeline:
            self.increment_successful_job_count(pipeline=pipeline)
            if job.started_at and job.ended_at:
                self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
            if result_ttl != 0:
                job._handle_success(
                    result_ttl,
                    pipeline=pipeline,
                    worker_name=self.name,
                    execution_id=execution.id,
                    execution_started_at=execution.created_at,
                    execution_ended_at=job.ended_at,
                )
            if result_ttl == 0 and not job.group_id:
                # What job.cleanup(0) ends in, without its two reads (the status, to find the job's
                # registry: a finished job with no kept result is in none; and the executions, which
                # cleanup_execution below removes). Dependents are handled after the commit.
                pipeline.delete(job.key, job.dependencies_key, Result.get_key(job.id), job.execution_registry.key)
            else:
                job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
            job._status = JobStatus.FINISHED
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            pipeline.scard(job.dependents_key)
            has_dependents = pipeline.execute()[-1]
        if has_dependents:
            queue.enqueue_dependents(job)
            if result_ttl == 0:
                self.connection.delete(job.dependents_key)
        release_slot(job)
        self.log.debug("Worker %s: job %s finished", self.name, job.id)


class FallbackRelayThread(threading.Thread):
    """Moves database fallback events back into the queues every `interval_seconds`."""

    def __init__(self, *, interval_seconds: float) -> None:
        super().__init__(name="fallback-relay", daemon=True)
        self.interval_seconds = interval_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        from queueing.fallback import fallback_relay_safely
        from queueing.operations import worker_housekeeping

        while not self.stopping.wait(self.interval_seconds):
            fallback_relay_safely()
            worker_housekeeping()  # the activity log into the database, daily purge, jobs-per-minute

    def stop(self) -> None:
        self.stopping.set()


class InstabotWorker(ConcurrentWorker):
    """The worker `manage.py rqworker` runs (settings.RQ["WORKER_CLASS"]).

    On top of `ConcurrentWorker` it always runs RQ's scheduler (retries with backoff and deferred
    sends are scheduled jobs, and operators start workers without extra flags), relays database
    fallback events in a background thread once Redis answers again, and looks for jobs abandoned
    by killed workers more often than RQ's ten minutes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", settings.WORKER_MAINTENANCE_INTERVAL_SECONDS)
        super().__init__(*args, **kwargs)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # RQ adds a fixed 60 s of grace to every heartbeat; the setting makes it tunable.
        ttl = int(super().get_heartbeat_ttl(job, working_time)) - 60
        return ttl + settings.WORKER_HEARTBEAT_GRACE_SECONDS

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs["with_scheduler"] = True
        relay = FallbackRelayThread(interval_seconds=settings.FALLBACK_RELAY_INTERVAL_SECONDS)
        relay.start()
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            relay.stop()
            stats_flush()
            activity_flush()
