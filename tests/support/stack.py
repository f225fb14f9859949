"""Real processes for the fault suite: a private Redis, the web server, workers. All bounded in time."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tests.support.processes import ROOT, command_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class PrivateRedis:
    """A redis-server of the test's own, persisting to an append-only file like production should."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(self._answers, timeout=10), "private redis did not start"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # a clean shutdown: the AOF is complete
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: what the append-only file (fsync always) has is all that survives."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class ManagedProcess:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def signal(self, sig: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def kill_tree(self) -> None:
        """SIGKILL the process and every descendant (RQ's work horses run in their own groups)."""
        pids = [self.process.pid]
        index = 0
        while index < len(pids):
            children = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(pids[index])], capture_output=True, text=True, check=False
            ).stdout.split()
            pids.extend(int(child) for child in children)
            index += 1
        for pid in reversed(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.process.wait(timeout=10)
        finally:
            self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def stack_env(*, redis_url: str, **extra: str) -> dict[str, str]:
    env = command_env(TEST_REDIS_URL=redis_url, **extra)
    env.setdefault("FALLBACK_RELAY_INTERVAL_SECONDS", "0.5")
    env.setdefault("REDIS_CIRCUIT_OPEN_SECONDS", "0.5")
    env.setdefault("DELIVERY_BACKOFF_BASE_SECONDS", "1")
    env.setdefault("DELIVERY_BACKOFF_MAX_SECONDS", "2")
    return env


def start_web(env: dict[str, str], log: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    web = ManagedProcess(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "instabot.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "8",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
        ],
        env,
        log,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(url + "/api/webhooks/instagram", timeout=1).status_code == 403
        except requests.RequestException:
            return False

    assert wait_for(up, timeout=20), web.output()
    return web, url


def start_worker(env: dict[str, str], log: Path) -> ManagedProcess:
    return ManagedProcess([sys.executable, "manage.py", "rqworker", "high", "default", "low"], env, log)
