"""Scale on one box, as a model of many: `.venv/bin/python -m bench.scale` prints one JSON document.

N gunicorn processes (`--web`, default 2) and M `rqworker` processes (`--workers`, default 1,2,4,8)
against one private redis-server, with the Node fake Graph API (bench/fake_graph_api.cjs):

- `intake`: webhooks posted as fast as the web processes take them, no worker running;
- `drain` (each M): a queue pre-filled through intake, emptied by M workers (Graph latency 100 ms);
- `end_to_end` (each M): webhooks posted as fast as intake takes them while M workers answer them.

`intake` and `drain` report what one webhook (one job) costs: the Redis server's own CPU (INFO cpu,
used_cpu_sys + used_cpu_user), Redis commands (INFO stats total_commands_processed, and the busiest
commands from INFO commandstats) and the web's or workers' CPU; their sum is a webhook's cost end to
end. `redis_core_share` is the part of one core Redis used; `redis_bound_..._per_s` = 1000 / Redis CPU
ms per unit, the rate at which this Redis would be the limit, however many web and worker nodes.

`replicas_ack` (its own phase): intake latency at a fixed 300 webhooks/s with a replica attached,
REDIS_MIN_REPLICAS_ACK 0 and 1, twice each: the price of acknowledging only replicated webhooks.

The machine's load (`/proc/loadavg`) is recorded before and after: on a shared machine the figures
move with it.
"""

import argparse
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.loadgen import run_at_rate, run_burst
from bench.run import Stack, cpu_seconds, free_port, latency_summary, report_print, wait_until

LATENCY_MS = 100


def drainer_cpu(stack: Stack) -> float:
    return cpu_seconds(stack.drainer.pid) if stack.drainer is not None else 0.0


def web_pids(stack: Stack) -> list[int]:
    """gunicorn's master and its worker processes."""
    assert stack.web is not None
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(stack.web.pid)], capture_output=True, text=True, timeout=5, check=False
    )
    return [stack.web.pid, *(int(pid) for pid in out.stdout.split())]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class RedisCounters:
    """What the Redis server has spent so far: CPU seconds, commands, calls per command."""

    def __init__(self, stack: Stack) -> None:
        cpu = self._info(stack, "cpu")
        self.cpu = float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])
        self.commands = int(self._info(stack, "stats")["total_commands_processed"])
        self.calls = {
            name.removeprefix("cmdstat_"): int(dict(part.split("=") for part in value.split(","))["calls"])
            for name, value in self._info(stack, "commandstats").items()
        }
        self.at = time.monotonic()

    @staticmethod
    def _info(stack: Stack, section: str) -> dict[str, str]:
        lines = stack.redis("info", section).splitlines()
        return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))

    def cost(self, later: "RedisCounters", *, jobs: int) -> dict[str, Any]:
        jobs = max(1, jobs)
        cpu_ms = 1000 * (later.cpu - self.cpu) / jobs
        delta = {name: calls - self.calls.get(name, 0) for name, calls in later.calls.items()}
        busiest = sorted(delta.items(), key=lambda item: -item[1])[:8]
        busiest += [
            (name, delta[name])
            for name in ("wait", "eval", "evalsha")
            if name in delta and (name, delta[name]) not in busiest
        ]
        return {
            "redis_cpu_ms_per_job": round(cpu_ms, 4),
            "redis_commands_per_job": round((later.commands - self.commands) / jobs, 2),
            "redis_calls_per_job": {name: round(calls / jobs, 2) for name, calls in busiest if calls},
            "redis_core_share": round((later.cpu - self.cpu) / max(1e-9, later.at - self.at), 3),
            "redis_bound_jobs_per_s": round(1000 / cpu_ms) if cpu_ms > 0 else None,
        }


def drain(
    stack: Stack, *, workers: int, count: int, window: float, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    stack.reset(LATENCY_MS)
    run_burst(stack.requests(count, f"sd{workers}-"), host="127.0.0.1", port=stack.web_port)
    with stack.workers(workers, latency=LATENCY_MS, extra_env=extra_env) as pids:
        wait_until(lambda: stack.graph_requests(LATENCY_MS) > 0, timeout=60, what="first Graph call")
        before, calls_before = RedisCounters(stack), stack.graph_requests(LATENCY_MS)
        cpu_before, drainer_before = sum(cpu_seconds(pid) for pid in pids), drainer_cpu(stack)
        try:
            wait_until(lambda: stack.graph_requests(LATENCY_MS) >= count, timeout=window, what="Graph calls")
        except TimeoutError:
            pass
        after, calls = RedisCounters(stack), stack.graph_requests(LATENCY_MS)
        worker_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        drainer = drainer_cpu(stack) - drainer_before
    jobs = calls - calls_before
    seconds = after.at - before.at
    return {
        "jobs": jobs,
        "seconds": round(seconds, 2),
        "jobs_per_s": round(jobs / seconds, 1),
        "worker_cpu_ms_per_job": round(1000 * worker_cpu / max(1, jobs), 3),
        # The activity log's writer (`drain_activity --forever`, one per deployment), per job.
        "activity_drainer_cpu_ms_per_job": round(1000 * drainer / max(1, jobs), 3),
        **before.cost(after, jobs=jobs),
    }


def end_to_end(stack: Stack, *, workers: int, window: float, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    stack.reset(LATENCY_MS)
    requests = stack.requests(int(3000 * (window + 3)), f"se{workers}-")
    with stack.workers(workers, latency=LATENCY_MS, extra_env=extra_env) as pids:
        poster = threading.Thread(
            target=run_burst,
            args=(requests,),
            kwargs={"host": "127.0.0.1", "port": stack.web_port, "seconds": window + 2},
        )
        poster.start()
        wait_until(lambda: stack.graph_requests(LATENCY_MS) > 0, timeout=30, what="first Graph call")
        ramp_end = time.monotonic() + 1
        wait_until(lambda: time.monotonic() >= ramp_end, timeout=2, what="the ramp")
        web = web_pids(stack)
        backlog_before = int(stack.redis("llen", "rq:queue:high"))  # every DM goes to `high`
        before, calls_before = RedisCounters(stack), stack.graph_requests(LATENCY_MS)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        web_cpu_before = sum(cpu_seconds(pid) for pid in web)
        window_end = time.monotonic() + window
        wait_until(lambda: time.monotonic() >= window_end, timeout=window + 1, what="the window")
        after, calls = RedisCounters(stack), stack.graph_requests(LATENCY_MS)
        worker_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        web_cpu = sum(cpu_seconds(pid) for pid in web) - web_cpu_before
        backlog = int(stack.redis("llen", "rq:queue:high"))
        poster.join(timeout=60)
    jobs = calls - calls_before
    taken = jobs + backlog - backlog_before
    seconds = after.at - before.at
    return {
        "webhooks_answered": jobs,
        "webhooks_taken": taken,
        "backlog_growth": backlog - backlog_before,
        "seconds": round(seconds, 2),
        "webhooks_per_s": round(jobs / seconds, 1),
        "worker_cpu_ms_per_job": round(1000 * worker_cpu / max(1, jobs), 3),
        "web_cpu_ms_per_webhook": round(1000 * web_cpu / max(1, taken), 3),
        # Intake and workers rarely take exactly as many: Redis's cost per webhook is intake's plus drain's.
        "redis_core_share": before.cost(after, jobs=jobs)["redis_core_share"],
    }


def intake(stack: Stack, *, window: float) -> dict[str, Any]:
    """Intake alone, as fast as it takes webhooks: its capacity with these web processes, and what one
    webhook costs Redis and the web processes."""
    stack.reset(0)
    run_burst(stack.requests(300, "siw-"), host="127.0.0.1", port=stack.web_port)
    web = web_pids(stack)
    before, web_cpu_before = RedisCounters(stack), sum(cpu_seconds(pid) for pid in web)
    result = run_burst(stack.requests(int(4000 * window), "si-"), host="127.0.0.1", port=stack.web_port, seconds=window)
    after, web_cpu = RedisCounters(stack), sum(cpu_seconds(pid) for pid in web) - web_cpu_before
    taken = result.sent - result.errors
    return {
        "webhooks": taken,
        "webhooks_per_s": round(taken / (after.at - before.at), 1),
        "web_cpu_ms_per_webhook": round(1000 * web_cpu / max(1, taken), 3),
        **{name.replace("_job", "_webhook"): value for name, value in before.cost(after, jobs=taken).items()},
    }


def replicas_ack(stack: Stack, *, seconds: float) -> dict[str, Any]:
    """Against a master with one replica, with and without waiting for it: intake alone at 300/s
    (twice each), then 2 workers draining (their ledger-claim WAIT) and end to end."""
    port = free_port()
    replica = stack.start(
        "redis-replica",
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        # Its copy of the master's data goes to the run's directory, not the checkout.
        + ["--replicaof", "127.0.0.1", str(stack.redis_port), "--dir", str(stack.workdir)],
    )

    def in_sync() -> bool:
        out = subprocess.run(
            ["redis-cli", "-p", str(port), "info", "replication"], capture_output=True, text=True, timeout=5
        ).stdout
        return "master_link_status:up" in out

    wait_until(in_sync, timeout=30, what="the replica")
    rounds: dict[str, list[dict[str, Any]]] = {"0": [], "1": []}
    both_ends: dict[str, Any] = {}
    try:
        for ack in ("0", "1", "0", "1"):
            stack.start_web({"REDIS_MIN_REPLICAS_ACK": ack})
            stack.reset(0)
            run_burst(stack.requests(300, f"warm{ack}-"), host="127.0.0.1", port=stack.web_port)
            before = RedisCounters(stack)
            result = run_at_rate(
                stack.requests(int(300 * seconds), f"ack{ack}-{len(rounds[ack])}-"),
                host="127.0.0.1",
                port=stack.web_port,
                rate=300,
            )
            after = RedisCounters(stack)
            cost = before.cost(after, jobs=result.sent)
            rounds[ack].append(
                {
                    **latency_summary(result),
                    "redis_cpu_ms_per_webhook": cost["redis_cpu_ms_per_job"],
                    "redis_commands_per_webhook": cost["redis_commands_per_job"],
                }
            )
        for ack in ("0", "1"):
            stack.start_web({"REDIS_MIN_REPLICAS_ACK": ack})
            both_ends[f"drain_2_workers_min_replicas_ack_{ack}"] = drain(
                stack, workers=2, count=4000, window=seconds * 2, extra_env={"REDIS_MIN_REPLICAS_ACK": ack}
            )
            both_ends[f"end_to_end_2_workers_min_replicas_ack_{ack}"] = end_to_end(
                stack, workers=2, window=seconds, extra_env={"REDIS_MIN_REPLICAS_ACK": ack}
            )
    finally:
        stack.stop(replica)
        stack.start_web()
    return {**{f"intake_min_replicas_ack_{ack}": runs for ack, runs in rounds.items()}, **both_ends}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--web", type=int, default=2, help="gunicorn worker processes (WEB_CONCURRENCY)")
    parser.add_argument("--workers", default="1,2,4,8", help="worker process counts to run, comma-separated")
    parser.add_argument(
        "--phases", default="intake,drain,end_to_end,replicas_ack", help="a subset of those four, comma-separated"
    )
    parser.add_argument("--quick", action="store_true", help="shorter windows, for a smoke run")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    counts = [int(n) for n in args.workers.split(",")]
    window = 3.0 if args.quick else 6.0
    workdir = Path(tempfile.mkdtemp(prefix="instabot-scale-"))
    stack = Stack(workdir)
    stack.env["WEB_CONCURRENCY"] = str(args.web)
    started = time.time()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "host": socket.gethostname(), "load_before": load_average()},
        "web_processes": args.web,
        "concurrency": 200,
        "graph_latency_ms": LATENCY_MS,
    }
    try:
        stack.boot()
        if "intake" in phases:
            report["intake"] = intake(stack, window=window)
        if "drain" in phases:
            report["drain"] = {
                f"{m}_workers": drain(stack, workers=m, count=int(1500 * (m + 1) * window / 6), window=window * 2)
                for m in counts
            }
        if "end_to_end" in phases:
            report["end_to_end"] = {f"{m}_workers": end_to_end(stack, workers=m, window=window) for m in counts}
        if "replicas_ack" in phases:
            report["replicas_ack"] = replicas_ack(stack, seconds=window)
        report["machine"]["load_after"] = load_average()
        report["seconds_total"] = round(time.time() - started, 1)
    finally:
        stack.stop_all()
    report_print(report, workdir)


if __name__ == "__main__":
    main()
