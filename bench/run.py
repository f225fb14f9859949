"""Instabot's throughput benchmark: `.venv/bin/python -m bench.run` prints one JSON document.

Starts a private redis-server, gunicorn (gunicorn.conf.py), two fake Graph APIs (Node, 100 ms and
0 ms) and `manage.py rqworker high default low` processes, all on free loopback ports, drives them
with signed DM webhooks from bench/loadgen.py, and stops everything it started. Every wait is
bounded; the whole run takes about two minutes.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.loadgen import ACCOUNTS, LoadResult, run_at_rate, run_burst, signed_dm_request

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SECRET = "bench-app-secret"  # noqa: S105 - signs loopback benchmark traffic only


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def http_json(url: str, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback http only
        return json.loads(response.read())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Stack:
    """The processes of one benchmark run, and the environment they share."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis_port = free_port()
        self.web_port = free_port()
        self.graph_ports = {100: free_port(), 0: free_port()}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.drainer: subprocess.Popen[bytes] | None = None
        self.by_name: dict[str, subprocess.Popen[bytes]] = {}
        self.web: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "instabot.settings",
                "DJANGO_DEBUG": "false",
                "DJANGO_SECURE_SSL_REDIRECT": "false",  # the load generator speaks plain HTTP
                "DJANGO_SECRET_KEY": "bench-secret-key",
                "INSTAGRAM_APP_SECRET": SECRET,
                "INSTAGRAM_VERIFY_TOKEN": "bench-verify-token",
                "INSTABOT_ENCRYPTION_KEY": "e6FGWjD50oVuVvR9irc00QKrshC5Cw25YwPwTPiIYUU=",
                "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
                "GUNICORN_LOG_LEVEL": "warning",
                "PYTHONUNBUFFERED": "1",
            }
        )

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.by_name[name] = proc
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc, timeout=10)
        subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"],
            capture_output=True,
            timeout=10,
            check=False,
        )

    def redis(self, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), *args], capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()

    def boot(self) -> None:
        self.start(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        for latency, port in self.graph_ports.items():
            self.start(
                f"graph-{latency}ms",
                ["node", str(ROOT / "bench" / "fake_graph_api.cjs"), "--port", str(port), "--latency-ms", str(latency)],
            )
        for args in (["migrate", "--noinput"], ["seed_demo", "--accounts", str(ACCOUNTS)]):
            subprocess.run(
                [PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, timeout=120, check=True
            )
        # As deployed (Procfile, docker/compose.yml): the activity log goes into the database from a
        # process of its own, not from the workers.
        self.drainer = self.start("drainer", [PY, "manage.py", "drain_activity", "--forever"])
        wait_until(lambda: self.redis("ping") == "PONG", timeout=10, what="redis")
        self.start_web()
        for port in self.graph_ports.values():
            wait_until(lambda port=port: self._graph_ready(port), timeout=10, what="fake Graph API")

    def start_web(self, extra_env: dict[str, str] | None = None) -> None:
        """gunicorn with gunicorn.conf.py (WEB_CONCURRENCY processes), replacing the one running if any."""
        if self.web is not None:
            self.stop(self.web)
            wait_until(lambda: not self._web_ready(), timeout=20, what="gunicorn to stop")
        env = {**self.env, **(extra_env or {})}
        self.web = self.start(
            "gunicorn", [str(Path(PY).parent / "gunicorn"), "instabot.wsgi", "-c", "gunicorn.conf.py"], env
        )
        wait_until(self._web_ready, timeout=30, what="gunicorn")

    def _web_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.web_port), timeout=1):
                return True
        except OSError:
            return False

    def _graph_ready(self, port: int) -> bool:
        try:
            http_json(f"http://127.0.0.1:{port}/stats")
            return True
        except OSError:
            return False

    def graph_requests(self, latency: int) -> int:
        return int(http_json(f"http://127.0.0.1:{self.graph_ports[latency]}/stats")["requests"])

    def reset(self, latency: int) -> None:
        self.redis("flushdb")  # our own private redis-server, nobody else's data
        http_json(f"http://127.0.0.1:{self.graph_ports[latency]}/stats/reset", method="POST")

    @contextmanager
    def workers(
        self,
        count: int,
        *,
        latency: int,
        worker_class: str = "",
        concurrency: int = 200,
        extra_env: dict[str, str] | None = None,
    ) -> Iterator[list[int]]:
        env = dict(self.env)
        env.update(
            {
                "GRAPH_API_BASE_URL": f"http://127.0.0.1:{self.graph_ports[latency]}",
                "CONCURRENCY": str(concurrency),
                # Two INFO lines per job (RQ's and Instabot's) cost measurable CPU at these rates.
                "LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
            }
        )
        if worker_class:
            env["RQ_WORKER_CLASS"] = worker_class
        env.update(extra_env or {})
        procs = [
            self.start(f"worker-{latency}ms", [PY, "manage.py", "rqworker", "high", "default", "low"], env=env)
            for _ in range(count)
        ]
        try:
            wait_until(lambda: int(self.redis("scard", "rq:workers") or 0) >= count, timeout=30, what="workers")
            yield [proc.pid for proc in procs]
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                self.stop(proc)

    def waiting(self) -> int:
        """Jobs queued and not yet taken."""
        return sum(int(self.redis("llen", f"rq:queue:{name}") or 0) for name in ("high", "default", "low"))

    def cpu_components(self, *, latency: int, worker_pids: list[int]) -> dict[str, list[int]]:
        """The processes of an end-to-end run, by role (the load generator is this process)."""
        web = self.by_name["gunicorn"].pid
        children = subprocess.run(["pgrep", "-P", str(web)], capture_output=True, text=True, check=False).stdout
        return {
            "web": [web, *map(int, children.split())],
            "workers": worker_pids,
            "redis": [self.by_name["redis"].pid],
            "fake_graph_api": [self.by_name[f"graph-{latency}ms"].pid],
            "activity_drainer": [self.by_name["drainer"].pid],
            "load_generator": [os.getpid()],
        }

    def requests(self, count: int, tag: str) -> list[bytes]:
        return [
            signed_dm_request(host="127.0.0.1", port=self.web_port, secret=SECRET, sender=f"{tag}{i}")
            for i in range(count)
        ]


def latency_summary(result: LoadResult) -> dict[str, Any]:
    return {
        "requests": result.sent,
        "errors": result.errors,
        "p50_ms": round(result.percentile(50) or 0, 2),
        "p99_ms": round(result.percentile(99) or 0, 2),
    }


def intake(stack: Stack, *, seconds: float, steps: list[int]) -> dict[str, Any]:
    """Intake alone (no workers): latency at 300/s, then rising rates until p99 reaches 50 ms."""
    stack.reset(0)
    # Warm up every gunicorn thread (imports, first connections) before measuring.
    run_burst(stack.requests(300, "warm-"), host="127.0.0.1", port=stack.web_port)
    at_300 = run_at_rate(stack.requests(int(300 * seconds), "i300-"), host="127.0.0.1", port=stack.web_port, rate=300)
    best = 0
    ladder = []
    for rate in steps:
        stack.reset(0)
        result = run_at_rate(
            stack.requests(int(rate * 2), f"i{rate}-"), host="127.0.0.1", port=stack.web_port, rate=rate
        )
        row = {"rate": rate, **latency_summary(result)}
        ladder.append(row)
        if result.errors or row["p99_ms"] >= 50:
            break
        best = rate
    return {"at_300_per_s": latency_summary(at_300), "max_rate_p99_under_50ms": best, "ladder": ladder}


def end_to_end(stack: Stack, *, workers: int, latency: int, window: float, worker_class: str = "") -> dict[str, Any]:
    """Webhooks posted as fast as intake takes them while the workers run; the rate is Graph calls
    received per second over `window` seconds of that steady state (after a one-second ramp)."""
    stack.reset(latency)
    requests = stack.requests(int(4000 * (window + 2)), f"e{workers}w{latency}-")
    with stack.workers(workers, latency=latency, worker_class=worker_class) as pids:
        components = stack.cpu_components(latency=latency, worker_pids=pids)
        poster = threading.Thread(
            target=run_burst,
            args=(requests,),
            kwargs={"host": "127.0.0.1", "port": stack.web_port, "seconds": window + 1.5},
        )
        poster.start()
        time.sleep(1)
        start_calls, started, start_waiting = stack.graph_requests(latency), time.time(), stack.waiting()
        cpu_before = {name: sum(cpu_seconds(pid) for pid in group) for name, group in components.items()}
        time.sleep(window)
        cpu = {name: sum(cpu_seconds(pid) for pid in group) - cpu_before[name] for name, group in components.items()}
        calls, seconds = stack.graph_requests(latency) - start_calls, time.time() - started
        accepted = calls + stack.waiting() - start_waiting
        poster.join(timeout=30)
        rss = [peak_rss_mb(pid) for pid in pids]
    rate = calls / seconds
    # Where the two cores went, per webhook: intake per webhook accepted, the rest per webhook answered.
    per_webhook = {
        name: round(1000 * used / max(1, accepted if name in {"web", "load_generator"} else calls), 3)
        for name, used in cpu.items()
    }
    return {
        "graph_calls": calls,
        "seconds": round(seconds, 2),
        "webhooks_per_s": round(rate),
        "webhooks_per_hour": round(rate * 3600),
        "webhooks_accepted_per_s": round(accepted / seconds),
        "cpu_ms_per_webhook": per_webhook,
        "cpu_ms_per_webhook_total": round(sum(per_webhook.values()), 3),
        "cores_busy": round(sum(cpu.values()) / seconds, 2),
        "worker_peak_rss_mb": rss,
    }


def drain(
    stack: Stack,
    *,
    workers: int,
    latency: int,
    count: int,
    window: float,
    worker_class: str = "",
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Queue `count` webhooks first, then start the workers: their capacity, as BullMQ's `drain` figure.
    The clock runs from the first Graph call to the last, or for `window` seconds if that comes first."""
    stack.reset(latency)
    run_burst(stack.requests(count, f"d{workers}w{latency}-"), host="127.0.0.1", port=stack.web_port)
    with stack.workers(workers, latency=latency, worker_class=worker_class, extra_env=extra_env) as pids:
        wait_until(lambda: stack.graph_requests(latency) > 0, timeout=30, what="first Graph call")
        first, first_calls = time.time(), stack.graph_requests(latency)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        try:
            wait_until(lambda: stack.graph_requests(latency) >= count, timeout=window, what="Graph calls")
        except TimeoutError:
            pass
        calls, seconds = stack.graph_requests(latency), time.time() - first
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        rss = [peak_rss_mb(pid) for pid in pids]
    rate = calls / seconds
    return {
        "jobs": calls,
        "seconds": round(seconds, 2),
        "jobs_per_s": round(rate, 1),
        "jobs_per_hour": round(rate * 3600),
        # Machine-independent: what one job costs the worker processes, whatever else runs here.
        "worker_cpu_ms_per_job": round(1000 * cpu / max(1, calls - first_calls), 2),
        "worker_peak_rss_mb": rss,
    }


def activity_log_cost(stack: Stack, *, window: float, count: int) -> dict[str, Any]:
    """One worker draining at 0 ms Graph latency (CPU-bound), with the activity log recorded and with
    ACTIVITY_LOG_ENABLED=false. The log goes into the database from `drain_activity --forever` (as
    deployed); its CPU per job is reported beside the workers', counted until the log is all stored."""
    assert stack.drainer is not None
    runs = {}
    for state in ("off", "on"):
        drainer_before = cpu_seconds(stack.drainer.pid)
        runs[state] = drain(
            stack,
            workers=1,
            latency=0,
            count=count,
            window=window,
            extra_env={"ACTIVITY_LOG_ENABLED": "true" if state == "on" else "false"},
        )
        wait_until(lambda: stack.redis("llen", "instabot:activity:entries") == "0", timeout=60, what="log stored")
        time.sleep(1.5)  # the round that took the last batch has ended
        drainer_cpu = cpu_seconds(stack.drainer.pid) - drainer_before
        runs[state]["drainer_cpu_ms_per_job"] = round(1000 * drainer_cpu / max(1, runs[state]["jobs"]), 3)
    on, off = runs["on"], runs["off"]

    def cost(with_log: float, without: float) -> float | None:
        return round(100 * (with_log / without - 1), 1) if without else None

    return {
        "activity_log_off": off,
        "activity_log_on": on,
        # Positive: slower (fewer jobs a second) or dearer (more CPU a job) with the log.
        "throughput_cost_percent": -cost(on["jobs_per_s"], off["jobs_per_s"]) if off["jobs_per_s"] else None,
        "cpu_per_job_cost_percent": cost(on["worker_cpu_ms_per_job"], off["worker_cpu_ms_per_job"]),
    }


def report_print(report: dict[str, Any], workdir: Path) -> None:
    """The run's JSON document on stdout; its processes' logs kept (BENCH_KEEP_LOGS=1) or removed."""
    if os.environ.get("BENCH_KEEP_LOGS"):
        report["logs"] = str(workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument(
        "--phases",
        default="intake,end_to_end,drain,baseline,activity",
        help="comma-separated subset of: intake, end_to_end, drain, baseline, activity",
    )
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    scale = 0.4 if args.quick else 1.0
    window = 6 * scale
    workdir = Path(tempfile.mkdtemp(prefix="instabot-bench-"))
    stack = Stack(workdir)
    started = time.time()
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "concurrency": 200}
    try:
        stack.boot()
        if "intake" in phases:
            report["intake"] = intake(stack, seconds=4 * scale, steps=[600, 1000, 1500, 2000, 2500, 3000, 4000])
        e2e: dict[str, Any] = {}
        if "end_to_end" in phases:
            for latency in (100, 0):
                for workers in (1, 2):
                    e2e[f"graph_{latency}ms_{workers}_worker"] = end_to_end(
                        stack, workers=workers, latency=latency, window=window
                    )
            report["end_to_end"] = e2e
        drains: dict[str, Any] = {}
        if "drain" in phases:
            drains = {
                f"graph_100ms_{w}_worker": drain(stack, workers=w, latency=100, count=8000, window=window)
                for w in (1, 2)
            }
            report["drain"] = drains
        if "baseline" in phases:
            report["baseline_rq_simpleworker"] = {
                "graph_100ms_1_worker": drain(
                    stack, workers=1, latency=100, count=200, worker_class="rq.worker.SimpleWorker", window=window
                )
            }
        if "activity" in phases:
            report["activity_log_cost"] = activity_log_cost(stack, window=window * 3, count=int(16000 * scale))
        rows = [*e2e.values(), *drains.values()]
        if rows:
            report["worker_peak_rss_mb_at_concurrency_200"] = max(max(row["worker_peak_rss_mb"]) for row in rows)
        report["seconds_total"] = round(time.time() - started, 1)
    finally:
        stack.stop_all()
    report_print(report, workdir)


if __name__ == "__main__":
    main()
