"""`InstabotWorker`: the RQ worker `manage.py rqworker high default low` runs, an asyncio engine.

Every Instabot job waits on one Graph API call, so one process keeps up to `CONCURRENCY` jobs in
flight on an event loop, with asyncio Redis and a keep-alive HTTP client. Jobs stay RQ jobs in RQ's
queues and registries (`rq info`, the django-rq dashboard, `rq requeue`, `Retry`, scheduled jobs,
`--burst`, `rq suspend` and the failed registry all keep working); what the engine writes of RQ's
data model is in queueing/rq_bridge.py.

- Taking jobs: one Lua call pops up to the number of free slots, highest queue first, and records each
  job as started (status, started registry, execution) in the same atomic step. A job is always in a
  queue or a started registry: if this process dies at any point, RQ's registry cleanup (worker
  maintenance, every `WORKER_MAINTENANCE_INTERVAL_SECONDS`) retries or fails it.
- Running: Instabot's own job (`queueing.jobs.process_instagram_event`) runs on the loop; any other
  job function runs through RQ's `perform_job` in a small thread pool (`WORKER_SYNC_THREADS`, which
  also serves database reads on a cache miss, so one process holds at most that many database
  connections).
- Finishing: successful jobs that keep no result are finished in batches, one Lua call for all jobs
  finished since the last call; failures, retries and anything else go through RQ's own methods.
- Staying alive: every few seconds one pipeline refreshes the worker's heartbeat and the started
  registry scores of every job in flight, so a long job never looks abandoned while it runs; a job
  of a dead worker looks abandoned `WORKER_HEARTBEAT_GRACE_SECONDS` after its last refresh.
- Redis restarts: commands are retried (connection refused, `LOADING`) for about a minute; the loop
  waits instead of exiting, and what it had taken stays in the started registry meanwhile.
- Scheduled jobs (retries with backoff, deferred sends, `enqueue_in`): every second one worker of the
  deployment, holding a lock that expires within seconds if it dies, moves the due ones into their
  queues with RQ's own scheduler code. No scheduler process is forked; a stock RQ scheduler running
  beside it is left alone (queues whose RQ scheduler lock is held are skipped).
- Stopping: the first SIGTERM/SIGINT takes no new jobs and lets those in flight finish within
  `WORKER_STOP_GRACE_SECONDS`; a second one exits at once, leaving them to RQ's recovery.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import itertools
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from django.conf import settings
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.timeouts import BaseDeathPenalty, JobTimeoutException
from rq.utils import now, utcformat
from rq.worker import DequeueStrategy, SimpleWorker, WorkerStatus

from automations.activity import activity_flush
from automations.context import EventContext, async_redis_client
from automations.graph import AsyncGraphClient, graph_client_config
from automations.stats import stats_flush
from instabot.redis import key
from instagram.maintenance import accounts_maintenance_run_if_due
from queueing import rq_bridge
from queueing.fallback import fallback_relay_safely
from queueing.jobs import aprocess_instagram_event
from queueing.operations import worker_housekeeping
from queueing.services import EVENT_JOB

logger = logging.getLogger(__name__)

# How often the worker's heartbeat and the started-registry scores of jobs in flight are refreshed, at
# most: three times per WORKER_HEARTBEAT_GRACE_SECONDS, so one late refresh never makes a job look abandoned.
HEARTBEAT_EVERY_SECONDS = 5.0
# How long a lock for one queue's registry cleanup lives if its holder dies (RQ's own lives 15 minutes).
MAINTENANCE_LOCK_MS = 30_000
# An idle worker looks for new jobs this often at most (it looks again at once after taking some).
IDLE_POLL_MAX_SECONDS = 0.05
# How often due scheduled jobs are moved into their queues, and how long the lock for that lives if
# its holder dies.
SCHEDULE_EVERY_SECONDS = 1.0
SCHEDULE_LOCK_MS = 10_000
# How often the activity log is drained into the database (and the jobs-per-minute sample taken).
HOUSEKEEPING_EVERY_SECONDS = 2.0
# How long a stop waits for cancelled tasks to end.
CANCEL_WAIT_SECONDS = 10.0
# No single step of taking jobs may hold the dispatcher longer than this (a stuck step is logged and retried).
DISPATCH_STEP_TIMEOUT_SECONDS = 20.0
# A burst worker's last look at the fallback store may take this long at most.
BURST_RELAY_TIMEOUT_SECONDS = 15.0
# How long Redis commands are retried while Redis is unreachable or loading its data.
REDIS_RETRY_SECONDS = 60.0


_RELEASE_LOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class WatchdogDeathPenalty(BaseDeathPenalty):
    """Job timeouts for plain job functions run in the thread pool: one shared watchdog thread raises
    the timeout in the job's thread (RQ's signal-based penalty works in the main thread only, and its
    `TimerDeathPenalty` starts a thread per job)."""

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


class WorkersSuspended(Exception):
    """`rq suspend` is in force: take no jobs."""


class InstabotWorker(SimpleWorker):
    """An RQ worker running up to `concurrency` jobs at once on an event loop (see the module docstring)."""

    death_penalty_class = WatchdogDeathPenalty
    log_result_lifespan = False

    def __init__(
        self,
        *args: Any,
        concurrency: int | None = None,
        stop_grace_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("maintenance_interval", settings.WORKER_MAINTENANCE_INTERVAL_SECONDS)
        super().__init__(*args, **kwargs)
        self.concurrency = max(1, concurrency if concurrency is not None else settings.CONCURRENCY)
        self.stop_grace_seconds = (
            stop_grace_seconds if stop_grace_seconds is not None else settings.WORKER_STOP_GRACE_SECONDS
        )
        # A job of a dead worker counts as abandoned this long after its last heartbeat.
        self.started_ttl = max(1, int(settings.WORKER_HEARTBEAT_GRACE_SECONDS))
        self.heartbeat_every = max(0.3, min(HEARTBEAT_EVERY_SECONDS, self.started_ttl / 3))
        self._force_stop = False
        self._in_flight: dict[str, rq_bridge.TakenJob] = {}
        self._finished: list[rq_bridge.TakenJob] = []
        self._finishing = 0

    # --- RQ's hooks, for the jobs that go through RQ's own code -------------------------------------

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # RQ adds a fixed 60 s of grace to every heartbeat; the setting makes it tunable.
        ttl = int(super().get_heartbeat_ttl(job, working_time)) - 60
        return ttl + settings.WORKER_HEARTBEAT_GRACE_SECONDS

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """Already done when the job was taken (rq_bridge.DEQUEUE_LUA)."""

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        job.ended_at = now()

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        accounts_maintenance_run_if_due()  # the daily token refresh, once per deployment

    def clean_registries(self) -> None:
        """RQ's registry cleanup (abandoned jobs retried or failed, expired entries dropped), each queue
        under a lock that lives MAINTENANCE_LOCK_MS if its holder dies (RQ's lives 15 minutes, which a
        worker killed mid-cleanup would hold against every other worker's recovery)."""
        for queue in self.queues:
            lock = key("maintenance-lock", queue.name)
            if not self.connection.set(lock, self.name, nx=True, px=MAINTENANCE_LOCK_MS):
                continue
            try:
                rq_bridge.clean_queue_registries(worker=self, queue=queue)
            finally:
                self.connection.eval(_RELEASE_LOCK_LUA, 1, lock, self.name)
        self.last_cleaned_at = now()  # type: ignore[assignment]

    # --- the process --------------------------------------------------------------------------------

    def work(
        self,
        burst: bool = False,
        logging_level: str | None = None,
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
        max_jobs: int | None = None,
        max_idle_time: int | None = None,
        with_scheduler: bool = True,
        dequeue_strategy: DequeueStrategy = DequeueStrategy.DEFAULT,
    ) -> bool:
        """Take and run jobs until the queues are empty (`burst`), a stop is requested, or `max_jobs` /
        `max_idle_time` is reached. Returns whether any job was started.

        RQ's scheduler always runs (retries with backoff and deferred sends are scheduled jobs, and
        operators start workers without extra flags)."""
        if dequeue_strategy != DequeueStrategy.DEFAULT:
            raise ValueError("InstabotWorker takes jobs in strict priority order only.")
        self._wait_for_redis()
        self.bootstrap(logging_level, date_format, log_format)
        self._scheduler = RQScheduler(self.queues, connection=self.connection, serializer=self.serializer)
        started = 0
        try:
            started = asyncio.run(self._run(burst=burst, max_jobs=max_jobs, max_idle_time=max_idle_time))
        finally:
            stats_flush()
            activity_flush()
            try:
                self.teardown()
            except redis.RedisError:
                self.log.warning("Worker %s: Redis unavailable at exit; its entry expires by itself", self.name)
        if self._force_stop:
            raise SystemExit(1)
        return started > 0

    def _set_ip_address(self, connection: redis.Redis) -> None:
        # RQ's constructor names its connection here (CLIENT SETNAME) and the worker exits if Redis does
        # not answer: wait for it first, as for a Redis restart or a Sentinel failover under way.
        self._wait_for_redis()
        super()._set_ip_address(connection)

    def _wait_for_redis(self) -> None:
        """Until Redis answers and has loaded its data, however long that takes."""
        waited = 0.0
        while True:
            try:
                self.connection.ping()
                return
            # BusyLoadingError and Sentinel's MasterNotFoundError are ConnectionErrors.
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if waited % 10 < 0.5:
                    self.log.warning("Worker %s: waiting for Redis (%s)", self.name, type(exc).__name__)
                time.sleep(0.5)
                waited += 0.5

    async def _run(self, *, burst: bool, max_jobs: int | None, max_idle_time: int | None) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_stop_signal)
        # `kill -USR1 <pid>`: what every task of the event loop is waiting on, into the log.
        loop.add_signal_handler(signal.SIGUSR1, self._log_tasks)
        self._redis = async_redis_client(
            max_connections=settings.WORKER_REDIS_CONNECTIONS, retry_seconds=REDIS_RETRY_SECONDS
        )
        self._pool = ThreadPoolExecutor(max_workers=settings.WORKER_SYNC_THREADS, thread_name_prefix="worker-sync")
        self._context = EventContext(
            redis=self._redis,
            graph=AsyncGraphClient(graph_client_config(pool_size=self.concurrency)),
            executor=self._pool,
            redis_retry_seconds=REDIS_RETRY_SECONDS,
        )
        self._dequeue = self._redis.register_script(rq_bridge.DEQUEUE_LUA)
        self._finish = self._redis.register_script(rq_bridge.FINISH_LUA)
        self._slot_freed = asyncio.Event()
        self._finish_wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # Before the first job, as RQ does: recover abandoned jobs, queue what is due (a burst worker
        # must see the work maintenance queues, e.g. the daily token refresh).
        for first in (self._maintenance, self._schedule):
            try:
                async with asyncio.timeout(DISPATCH_STEP_TIMEOUT_SECONDS):
                    await first()
            except Exception:
                self.log.exception("Worker %s: %s failed at start", self.name, first.__name__)
        background = [
            loop.create_task(self._finisher(), name="finisher"),
            loop.create_task(self._every(self.heartbeat_every, self._heartbeat), name="heartbeat"),
            loop.create_task(
                self._every(self.maintenance_interval, self._maintenance, first_delay=True), name="maintenance"
            ),
            loop.create_task(
                self._every(settings.FALLBACK_RELAY_INTERVAL_SECONDS, self._relay, first_delay=True), name="relay"
            ),
            loop.create_task(self._every(SCHEDULE_EVERY_SECONDS, self._schedule, first_delay=True), name="schedule"),
            loop.create_task(
                self._every(HOUSEKEEPING_EVERY_SECONDS, self._housekeeping, first_delay=True), name="housekeeping"
            ),
        ]
        try:
            started = await self._dispatch(burst=burst, max_jobs=max_jobs, max_idle_time=max_idle_time)
            await self._wait_for_jobs_in_flight()
            return started
        finally:
            await self._cancel_and_wait(background, what="background task")
            if self._force_stop:
                await self._cancel_and_wait(self._tasks, what="job")
            try:
                await asyncio.wait_for(self._context.close(), timeout=10)
            except TimeoutError:
                self.log.warning("Worker %s: connections did not close within 10 s", self.name)
            # What is left (Redis sends of the auto-pipeline): asyncio.run would wait for it unbounded.
            await self._cancel_and_wait(asyncio.all_tasks() - {asyncio.current_task()}, what="task")
            self._pool.shutdown(wait=not self._force_stop, cancel_futures=True)

    async def _cancel_and_wait(self, tasks: Iterable[asyncio.Task[Any]], *, what: str) -> None:
        for task in await cancel_and_wait(tasks, seconds=CANCEL_WAIT_SECONDS):
            self.log.error("Worker %s: %s %s did not stop when cancelled", self.name, what, task.get_name())

    async def _dispatch(self, *, burst: bool, max_jobs: int | None, max_idle_time: int | None) -> int:
        started = 0
        idle_since = time.monotonic()
        idle_poll = 0.001
        backoff = 0.5
        while not self._stop_requested:
            free = self.concurrency - len(self._in_flight)
            if max_jobs is not None:
                free = min(free, max_jobs - started)
                if free <= 0 and not self._in_flight:
                    self.log.info("Worker %s: finished executing %d jobs, quitting", self.name, started)
                    break
            if free <= 0:
                await self._wait_for_slot(timeout=1.0)
                continue
            try:
                async with asyncio.timeout(DISPATCH_STEP_TIMEOUT_SECONDS):
                    taken = await self._take(free)
            except WorkersSuspended:
                if burst:
                    self.log.info("Worker %s: suspended in burst mode, exiting", self.name)
                    break
                await self._set_state(WorkerStatus.SUSPENDED)
                await asyncio.sleep(1.0)
                continue
            except (redis.RedisError, TimeoutError) as exc:
                self.log.error("Worker %s: Redis unavailable (%r), retrying in %.1f s", self.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.5
            if taken:
                for item in taken:
                    self._start(item)
                started += len(taken)
                idle_since = time.monotonic()
                idle_poll = 0.001
                continue
            if self._in_flight:
                # A job in flight may still queue more work (a retry, a deferral): burst mode ends
                # only once none is in flight and the queues are still empty.
                self._forget_orphans()
                idle_since = time.monotonic()
                await self._wait_for_slot(timeout=idle_poll)
                idle_poll = min(idle_poll * 2, IDLE_POLL_MAX_SECONDS)
                continue
            if burst:
                try:
                    async with asyncio.timeout(BURST_RELAY_TIMEOUT_SECONDS):
                        relayed = await self._relay()
                except TimeoutError:
                    self.log.error("Worker %s: the fallback relay did not end in time; exiting anyway", self.name)
                    relayed = 0
                if relayed:
                    continue
                self.log.info("Worker %s: done, quitting", self.name)
                break
            if max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time:
                self.log.info("Worker %s: idle for %d seconds, quitting", self.name, max_idle_time)
                break
            try:
                async with asyncio.timeout(DISPATCH_STEP_TIMEOUT_SECONDS):
                    await self._set_state(WorkerStatus.IDLE)
            except (redis.RedisError, TimeoutError) as exc:
                self.log.error("Worker %s: could not record the idle state (%r)", self.name, exc)
            await asyncio.sleep(idle_poll)
            idle_poll = min(idle_poll * 2, IDLE_POLL_MAX_SECONDS)
        return started

    async def _take(self, count: int) -> list[rq_bridge.TakenJob]:
        keys, args = rq_bridge.dequeue_args(
            queues=list(self.queues),
            count=count,
            worker_name=self.name,
            worker_key=self.key,
            worker_executions_key=self.executions_key,
            ttl=self.started_ttl,
        )
        raw = await self._dequeue(keys=keys, args=args)
        if rq_bridge.dequeue_suspended(raw):
            raise WorkersSuspended
        taken = rq_bridge.jobs_from_dequeue(
            raw,
            queues=list(self.queues),
            job_class=self.job_class,
            serializer=self.serializer,
            worker_name=self.name,
            started_monotonic=time.monotonic(),
        )
        if taken:
            self._state = WorkerStatus.BUSY  # written to Redis by the take itself
        return taken

    async def _set_state(self, state: str) -> None:
        if self.get_state() != state:
            self._state = state
            await self._redis.hset(self.key, "state", state)

    def _start(self, item: rq_bridge.TakenJob) -> None:
        self._in_flight[item.composite_key] = item
        task = asyncio.get_running_loop().create_task(self._run_job(item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _log_tasks(self) -> None:
        for task in asyncio.all_tasks():
            where = " > ".join(_await_chain(task.get_coro()))
            self.log.warning("Worker %s: task %s waits in %s", self.name, task.get_name(), where or "(not started)")
        self.log.warning(
            "Worker %s: %d in flight, %d finished waiting, %d finishing",
            self.name,
            len(self._in_flight),
            len(self._finished),
            self._finishing,
        )

    def _forget_orphans(self) -> None:
        """Jobs whose task ended without freeing their slot (a bug): logged and given up to RQ's
        recovery (they are in the started registry), so the worker never waits on them forever."""
        if self._finished or any(not task.done() for task in self._tasks):
            return
        orphans = list(self._in_flight)
        if orphans:
            self.log.error(
                "Worker %s: %d job(s) ended without freeing their slot: %s", self.name, len(orphans), orphans
            )
            self._in_flight.clear()

    async def _wait_for_slot(self, *, timeout: float) -> None:
        self._slot_freed.clear()
        try:
            await asyncio.wait_for(self._slot_freed.wait(), timeout)
        except TimeoutError:
            pass

    async def _wait_for_jobs_in_flight(self) -> None:
        """After a stop request or the last job: let the jobs in flight finish, within the grace period."""
        if self._in_flight:
            self.log.info("Worker %s: waiting for %d job(s) in flight", self.name, len(self._in_flight))
        deadline = time.monotonic() + self.stop_grace_seconds
        while self._in_flight and not self._force_stop:
            left = deadline - time.monotonic()
            if left <= 0:
                self.log.warning(
                    "Worker %s: %d job(s) still running after %.0f s; leaving them to RQ's abandoned-job recovery",
                    self.name,
                    len(self._in_flight),
                    self.stop_grace_seconds,
                )
                self._force_stop = True
                return
            await self._wait_for_slot(timeout=min(left, 1.0))

    def _on_stop_signal(self) -> None:
        if not self._stop_requested:
            self.log.info("Worker %s: warm shut down requested, finishing jobs in flight", self.name)
            self._stop_requested = True
            self._shutdown_requested_date = now()
            self._slot_freed.set()
            return
        requested = self._shutdown_requested_date
        if requested is not None and (now() - requested).total_seconds() < 1:
            return  # the same stop delivered twice (process group and pool), as RQ treats it
        self.log.warning("Worker %s: cold shut down with %d job(s) in flight", self.name, len(self._in_flight))
        self._force_stop = True
        self._slot_freed.set()

    # --- one job ------------------------------------------------------------------------------------

    async def _run_job(self, item: rq_bridge.TakenJob) -> None:
        job = item.job
        try:
            if job.func_name != EVENT_JOB:
                # RQ's own perform_job, with its success and failure bookkeeping, off the loop.
                await asyncio.get_running_loop().run_in_executor(self._pool, self._perform_in_thread, item)
                self._done(item)
                return
            async with asyncio.timeout(job.timeout or Queue.DEFAULT_TIMEOUT):
                await aprocess_instagram_event(context=self._context, event=job.kwargs["event"], job=job)
        except asyncio.CancelledError:
            raise  # a cold stop: the job stays in the started registry for RQ's recovery
        except BaseException:  # noqa: B036 - any failure of a job is RQ's to record (retry or failed registry)
            exc_string = "".join(traceback.format_exception(*sys.exc_info()))
            self.log.error("Worker %s: job %s failed: %s", self.name, job.id, exc_string.strip().splitlines()[-1])
            await self._record(item, lambda: self._fail_in_thread(item, exc_string))
            return
        if rq_bridge.fast_finish_allowed(job):
            self._finished.append(item)
            self._finish_wakeup.set()
        else:
            await self._record(item, lambda: self._succeed_in_thread(item))

    async def _record(self, item: rq_bridge.TakenJob, bookkeeping: Any) -> None:
        """Run RQ's bookkeeping for a job that ended, until Redis takes it; then free its slot.

        While Redis is away the job stays in flight (its slot taken, its heartbeat kept); if this
        process stops first, the job is still in the started registry for RQ's recovery."""
        backoff = 0.5
        while not self._force_stop:
            try:
                await self._context.run_sync(bookkeeping)
                break
            except redis.RedisError as exc:
                self.log.error("Worker %s: could not record the end of job %s (%s)", self.name, item.job.id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                # Left in the started registry for RQ's recovery; the slot must not leak.
                self.log.exception("Worker %s: could not record the end of job %s", self.name, item.job.id)
                break
        self._done(item)

    def _done(self, item: rq_bridge.TakenJob) -> None:
        self._in_flight.pop(item.composite_key, None)
        self._slot_freed.set()

    def _execution(self, item: rq_bridge.TakenJob) -> Execution:
        execution = item.execution(worker_name=self.name)
        self.executions[execution.id] = execution
        return execution

    def _perform_in_thread(self, item: rq_bridge.TakenJob) -> None:
        try:
            self.perform_job(item.job, item.queue, self._execution(item))
        finally:
            self.executions.pop(item.execution_id, None)

    def _fail_in_thread(self, item: rq_bridge.TakenJob, exc_string: str) -> None:
        item.job.ended_at = now()
        registry = StartedJobRegistry(item.queue.name, connection=self.connection)
        self.handle_job_failure(
            item.job, item.queue, started_job_registry=registry, exc_string=exc_string, execution=self._execution(item)
        )

    def _succeed_in_thread(self, item: rq_bridge.TakenJob) -> None:
        item.job.ended_at = now()
        registry = StartedJobRegistry(item.queue.name, connection=self.connection)
        self.handle_job_success(item.job, item.queue, registry, self._execution(item))

    # --- background tasks ---------------------------------------------------------------------------

    async def _finisher(self) -> None:
        """Finish succeeded jobs in batches: one call for all that finished since the last one."""
        while True:
            await self._finish_wakeup.wait()
            self._finish_wakeup.clear()
            batch, self._finished = self._finished, []
            if not batch:
                continue
            self._finishing = len(batch)
            try:
                await self._finish_batch(batch)
            except Exception:
                # Not recorded as finished: the jobs stay in the started registry, where RQ's recovery
                # finds them (a finished send is never repeated: the ledger says done).
                self.log.exception("Worker %s: could not finish %d job(s)", self.name, len(batch))
            finally:
                self._finishing = 0
                for item in batch:
                    self._done(item)

    async def _finish_batch(self, batch: list[rq_bridge.TakenJob]) -> None:
        finished_at = time.monotonic()
        args = rq_bridge.finish_args(
            worker_key=self.key,
            worker_executions_key=self.executions_key,
            taken=batch,
            working_seconds=sum(finished_at - item.started_monotonic for item in batch),
        )
        backoff = 0.5
        while True:
            try:
                with_dependents = await self._finish(args=args)
                break
            except redis.RedisError as exc:
                if self._force_stop:
                    raise
                # Never dropped: the jobs stay in flight (and their slots taken) until this succeeds.
                self.log.error("Worker %s: could not finish %d job(s) (%s); retrying", self.name, len(batch), exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        for item in batch:
            item.job._status = JobStatus.FINISHED  # what RQ's dependents check reads of the parent
        dependent_keys = {key.decode() if isinstance(key, bytes) else key for key in with_dependents or []}
        for item in batch:
            if item.job.key in dependent_keys:
                await self._context.run_sync(lambda item=item: item.queue.enqueue_dependents(item.job))  # type: ignore[misc]

    async def _every(self, seconds: float, action: Any, *, first_delay: bool = False) -> None:
        if first_delay:
            await asyncio.sleep(seconds)
        while True:
            try:
                await action()
            except Exception:
                self.log.exception("Worker %s: %s failed; trying again in %.0f s", self.name, action.__name__, seconds)
            await asyncio.sleep(seconds)

    async def _heartbeat(self) -> None:
        """The worker's own heartbeat and every job in flight's, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            self.last_heartbeat = now()
            pipe.hset(self.key, "last_heartbeat", utcformat(self.last_heartbeat))
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.expire(self.executions_key, self.worker_ttl + 60)
            rq_bridge.heartbeat_in_flight(
                pipe, taken=list(self._in_flight.values()), ttl=self.started_ttl, now=time.time()
            )
            await pipe.execute()

    async def _schedule(self) -> None:
        """Move due scheduled jobs into their queues, one worker of the deployment at a time."""
        lock = key("scheduler-lock")
        if not await self._redis.set(lock, self.name, nx=True, px=SCHEDULE_LOCK_MS):
            return
        try:
            names = self.queue_names()
            await self._context.run_sync(
                lambda: rq_bridge.enqueue_due_scheduled_jobs(scheduler=self._scheduler, queue_names=names)
            )
        finally:
            await self._redis.eval(_RELEASE_LOCK_LUA, 1, lock, self.name)

    async def _maintenance(self) -> None:
        """RQ's: recover abandoned jobs of dead workers, clean the registries."""
        await self._context.run_sync(self.run_maintenance_tasks)

    async def _housekeeping(self) -> None:
        """The activity log into the database, its daily purge, the jobs-per-minute sample."""
        await self._context.run_sync(worker_housekeeping)

    async def _relay(self) -> int:
        """Move events waiting in the database fallback store into the queues; returns how many."""
        result = await self._context.run_sync(fallback_relay_safely)
        return result.relayed if result is not None else 0


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, seconds: float) -> set[asyncio.Task[Any]]:
    """Cancel the tasks and wait until they have ended, cancelling again as long as needed; returns
    those still running after `seconds`.

    Once is not enough on Python 3.11: its asyncio.wait_for (which redis-py uses to write to the
    socket) drops a cancellation that arrives just as the inner write completes, and the task goes
    on (a heartbeat loop would then run forever and the worker never exit)."""
    pending = {task for task in tasks if not task.done()}
    deadline = time.monotonic() + seconds
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
    return pending


def _await_chain(awaitable: Any) -> list[str]:
    """Where a suspended coroutine waits, outermost first (Task.get_stack shows only the outermost)."""
    chain: list[str] = []
    while awaitable is not None and len(chain) < 30:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            chain.append(repr(awaitable)[:160])  # what the innermost coroutine waits for: a future
            break
        chain.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}:{frame.f_lineno}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return chain
