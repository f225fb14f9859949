"""Everything the worker engine knows about RQ's Redis data model, in one place.

The engine (queueing/workers.py) takes, runs and finishes RQ jobs without RQ's worker loop, so it
writes RQ's keys itself. What it relies on, as of rq 3.0 (tests/queueing/test_rq_contract.py fails
loudly when a new RQ release changes any of it):

- a queue is a list of job ids at `Queue.key` (`rq:queue:<name>`); a job is a hash at `Job.key`
  (`rq:job:<id>`) that `Job.restore()` reads; its fields `status`, `started_at`, `last_heartbeat`,
  `worker_name` are what RQ's `prepare_for_execution` writes when a job starts;
- the started registry (`StartedJobRegistry.key`, `rq:wip:<queue>`) is a sorted set of
  `<job id>:<execution id>` scored by the time the execution counts as abandoned; RQ's own
  `StartedJobRegistry.cleanup` (worker maintenance) retries or fails such a job if its status is
  still `started`;
- an execution is a hash at `Execution.key` (`rq:execution:<job id>:<execution id>`) with `id`,
  `job_id`, `created_at`, `last_heartbeat`, `worker_name`, listed in the job's `ExecutionRegistry`
  (`rq:executions:<job id>`) and in the worker's executions set (`Worker.executions_key`);
- a finished job with `result_ttl=0` is deleted with its dependencies key, results stream and
  execution registry (what `Job.cleanup(0)` ends in); the worker hash counts
  `successful_job_count` and `total_working_time`;
- `rq suspend` sets `rq:suspended` (`rq.suspension.WORKERS_SUSPENDED`);
- registry cleanup is `rq.registry.clean_registries(queue, exception_handlers)`, then
  `worker_registration.clean_worker_registry(queue)` and `queue.intermediate_queue.cleanup(worker, queue)`,
  as `BaseWorker.clean_registries` does;
- RQ's scheduler holds `RQScheduler.get_locking_key(queue)` while it moves due scheduled jobs, which
  `RQScheduler.enqueue_scheduled_jobs` does for the registries `prepare_registries` names.

Everything else (failures, retries, dependents, results kept, scheduling, registry cleanup) goes
through RQ's public methods, run in a thread.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rq import worker_registration
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry, clean_registries
from rq.results import Result
from rq.scheduler import RQScheduler
from rq.suspension import WORKERS_SUSPENDED
from rq.utils import as_text, utcformat

SUSPENDED_KEY = WORKERS_SUSPENDED

# Take up to ARGV[1] jobs, highest-priority queue first, and record each as started, all in one atomic
# step: a job is always in a queue or in a started registry, never only in a worker's memory.
# Takes nothing while `rq suspend` is in force (returns {-1}).
# KEYS: the queue keys in priority order, then their started-registry keys in the same order, then
# the suspension key.
# ARGV: count, job key prefix, worker name, now (epoch s), started-registry TTL (s), now as RQ's UTC
# text, execution id prefix, worker executions key, execution key prefix, execution registry prefix,
# worker key (its `state` becomes busy in the same step).
# Returns a flat list: queue index, job id, execution id, job hash (as HGETALL), for each job.
DEQUEUE_LUA = """
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return {-1} end
local n = (#KEYS - 1) / 2
local want = tonumber(ARGV[1])
local now = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local out = {}
local seq = 0
for i = 1, n do
  if want <= 0 then break end
  local ids = redis.call('LPOP', KEYS[i], want)
  if ids then
    want = want - #ids
    for _, id in ipairs(ids) do
      local job_key = ARGV[2] .. id
      local data = redis.call('HGETALL', job_key)
      if #data > 0 then
        seq = seq + 1
        local execution_id = ARGV[7] .. seq
        local composite = id .. ':' .. execution_id
        redis.call('HSET', job_key, 'status', 'started', 'started_at', ARGV[6], 'last_heartbeat', ARGV[6],
                   'worker_name', ARGV[3])
        redis.call('PERSIST', job_key)
        redis.call('ZADD', KEYS[n + i], now + ttl, composite)
        local execution_key = ARGV[9] .. composite
        redis.call('HSET', execution_key, 'id', execution_id, 'job_id', id, 'created_at', now,
                   'last_heartbeat', now, 'worker_name', ARGV[3])
        redis.call('EXPIRE', execution_key, ttl)
        redis.call('ZADD', ARGV[10] .. id, now + ttl + 60, execution_id)
        redis.call('EXPIRE', ARGV[10] .. id, ttl + 60)
        redis.call('SADD', ARGV[8], composite)
        out[#out + 1] = i
        out[#out + 1] = id
        out[#out + 1] = execution_id
        out[#out + 1] = data
      end
    end
  end
end
if seq > 0 then
  redis.call('EXPIRE', ARGV[8], ttl + 60)
  redis.call('HSET', ARGV[11], 'state', 'busy')
end
return out
"""

# Finish a batch of jobs that succeeded and keep no result. ARGV: the worker key, the worker executions
# key, the number of jobs, the total working time, then 7 values per job: job key, dependencies key,
# results key, execution registry key, execution key, started-registry key, composite member, then the
# dependents key. Returns the ids (job keys) of the jobs that have dependents, for RQ to enqueue them.
FINISH_LUA = """
local count = tonumber(ARGV[3])
local out = {}
for j = 0, count - 1 do
  local b = 5 + j * 8
  redis.call('DEL', ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4])
  redis.call('ZREM', ARGV[b + 5], ARGV[b + 6])
  redis.call('SREM', ARGV[2], ARGV[b + 6])
  if redis.call('SCARD', ARGV[b + 7]) > 0 then out[#out + 1] = ARGV[b] end
end
redis.call('HINCRBY', ARGV[1], 'successful_job_count', count)
redis.call('HINCRBYFLOAT', ARGV[1], 'total_working_time', ARGV[4])
return out
"""


@dataclass
class TakenJob:
    """A job the engine took: RQ's job, its queue, and the execution recorded for it."""

    job: Job
    queue: Queue
    execution_id: str
    started_monotonic: float

    @property
    def composite_key(self) -> str:
        return f"{self.job.id}:{self.execution_id}"

    def execution(self, *, worker_name: str) -> Execution:
        return Execution(
            id=self.execution_id, job_id=self.job.id, connection=self.job.connection, worker_name=worker_name
        )


_EXECUTION_KEY_PREFIX = Execution(id="e", job_id="j", connection=None).key[: -len("j:e")]  # type: ignore[arg-type]
_EXECUTION_REGISTRY_PREFIX = ExecutionRegistry.key_template.format("")


def dequeue_args(
    *, queues: list[Queue], count: int, worker_name: str, worker_key: str, worker_executions_key: str, ttl: int
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of DEQUEUE_LUA."""
    now = datetime.now(UTC)
    keys = [q.key for q in queues] + [StartedJobRegistry(q.name, connection=q.connection).key for q in queues]
    keys.append(SUSPENDED_KEY)
    args = [
        count,
        Job.redis_job_namespace_prefix,
        worker_name,
        now.timestamp(),
        ttl,
        utcformat(now),
        uuid.uuid4().hex[:20] + "-",
        worker_executions_key,
        _EXECUTION_KEY_PREFIX,
        _EXECUTION_REGISTRY_PREFIX,
        worker_key,
    ]
    return keys, args


def dequeue_suspended(raw: list[Any]) -> bool:
    """Whether DEQUEUE_LUA found the workers suspended (`rq suspend`)."""
    return len(raw) == 1 and int(raw[0]) == -1


def jobs_from_dequeue(
    raw: list[Any],
    *,
    queues: list[Queue],
    job_class: type[Job],
    serializer: Any,
    worker_name: str,
    started_monotonic: float,
) -> list[TakenJob]:
    taken = []
    started_at = datetime.now(UTC)
    for index in range(0, len(raw), 4):
        queue = queues[int(raw[index]) - 1]
        data = raw[index + 3]
        job = job_class(as_text(raw[index + 1]), connection=queue.connection, serializer=serializer)
        job.restore(dict(zip(data[::2], data[1::2], strict=True)))
        job._status = JobStatus.STARTED
        job.started_at = started_at
        job.worker_name = worker_name
        taken.append(TakenJob(job, queue, as_text(raw[index + 2]), started_monotonic))
    return taken


def fast_finish_allowed(job: Job) -> bool:
    """Whether RQ would do no more than delete this job when it succeeds (as for Instabot's jobs)."""
    return (
        job.result_ttl == 0
        and not job.group_id
        and not job.repeats_left
        and job._success_callback_name is None
        and job._stopped_callback_name is None
    )


def finish_args(
    *, worker_key: str, worker_executions_key: str, taken: list[TakenJob], working_seconds: float
) -> list[Any]:
    """ARGV of FINISH_LUA."""
    args: list[Any] = [worker_key, worker_executions_key, len(taken), f"{working_seconds:.6f}"]
    for item in taken:
        job = item.job
        args += [
            job.key,
            job.dependencies_key,
            Result.get_key(job.id),
            ExecutionRegistry(job_id=job.id, connection=job.connection).key,
            _EXECUTION_KEY_PREFIX + item.composite_key,
            StartedJobRegistry(item.queue.name, connection=item.queue.connection).key,
            item.composite_key,
            job.dependents_key,
        ]
    return args


def heartbeat_in_flight(pipeline: Any, *, taken: list[TakenJob], ttl: int, now: float) -> None:
    """Queue on `pipeline` what keeps jobs in flight from looking abandoned: their started-registry and
    execution-registry scores moved to `now + ttl` (only if still there), their execution hashes kept."""
    for item in taken:
        job = item.job
        started_key = StartedJobRegistry(item.queue.name, connection=item.queue.connection).key
        pipeline.zadd(started_key, {item.composite_key: now + ttl}, xx=True)
        registry_key = ExecutionRegistry(job_id=job.id, connection=job.connection).key
        pipeline.zadd(registry_key, {item.execution_id: now + ttl + 60}, xx=True)
        pipeline.expire(_EXECUTION_KEY_PREFIX + item.composite_key, ttl)


def enqueue_due_scheduled_jobs(*, scheduler: RQScheduler, queue_names: list[str]) -> None:
    """Move scheduled jobs that are due into their queues, with RQ's own code, for the queues no RQ
    scheduler process holds right now (the caller holds Instabot's scheduling lock)."""
    connection = scheduler.connection
    free = [name for name in queue_names if not connection.exists(scheduler.get_locking_key(name))]
    if not free:
        return
    scheduler.prepare_registries(free)
    scheduler.enqueue_scheduled_jobs()


def clean_queue_registries(*, worker: Any, queue: Queue) -> None:
    """What RQ's `BaseWorker.clean_registries` does for one queue, without RQ's 15-minute lock."""
    clean_registries(queue, worker._exc_handlers)
    worker_registration.clean_worker_registry(queue)
    queue.intermediate_queue.cleanup(worker, queue)
