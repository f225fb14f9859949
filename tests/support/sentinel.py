"""A Redis master, a replica and three sentinels on 127.0.0.1, from Debian's redis-server (redis-sentinel).

Sentinel declares the master down after DOWN_AFTER_MS without an answer and promotes the replica. Ports are
free ones, or consecutive from TEST_REDIS_PORTS (`6461`: master, replica, then the sentinels) when set.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.support.stack import free_port, wait_for

MASTER_NAME = "instabot"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def _ports(count: int) -> list[int]:
    first = os.environ.get("TEST_REDIS_PORTS", "")
    if first:
        return [int(first) + i for i in range(count)]
    return [free_port() for _ in range(count)]


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class SentinelCluster:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        ports = _ports(6)
        self.data_ports = ports[:2]
        self.sentinel_ports = ports[2:5]
        self.spare_port = ports[5]  # for a second master the sentinels may be asked to watch
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    # --- what Instabot is given -------------------------------------------------------------------

    @property
    def sentinels_setting(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def env(self) -> dict[str, str]:
        return {
            "REDIS_SENTINELS": self.sentinels_setting,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
        }

    # --- processes --------------------------------------------------------------------------------

    def start(self) -> None:
        master, replica = self.data_ports
        self.start_data_node(master)
        self.start_data_node(replica, replica_of=master)
        for port in self.sentinel_ports:
            self.start_sentinel(port, master)
        assert wait_for(self._ready, timeout=20), "the sentinels did not see the master and its replica"

    def start_data_node(self, port: int, *, replica_of: int | None = None, promotable: bool = True) -> None:
        directory = self.directory / f"redis-{port}"
        directory.mkdir(exist_ok=True)
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(directory), "--logfile", str(self.directory / f"redis-{port}.log")]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        if not promotable:
            args += ["--replica-priority", "0"]
        self.processes[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: _answers(port), timeout=10), f"redis-server on {port} did not start"

    def start_sentinel(self, port: int, master: int) -> None:
        config = self.directory / f"sentinel-{port}.conf"  # Sentinel rewrites it: a file of its own
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.directory}\nlogfile {self.directory / f'sentinel-{port}.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
        )
        binary = shutil.which("redis-sentinel")
        args = [binary, str(config)] if binary else ["redis-server", str(config), "--sentinel"]
        self.processes[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _ready(self) -> bool:
        try:
            for port in self.sentinel_ports:
                state = self.sentinel(port).sentinel_master(MASTER_NAME)
                if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                    return False
            return self.replica_in_sync(self.data_ports[1])
        except redis.RedisError:
            return False

    def monitor(self, name: str, port: int) -> None:
        """Every sentinel watches one more master too (`SENTINEL MONITOR`), running or not."""
        for sentinel_port in self.sentinel_ports:
            sentinel = self.sentinel(sentinel_port)
            sentinel.execute_command("SENTINEL", "MONITOR", name, "127.0.0.1", port, 2)
            sentinel.execute_command("SENTINEL", "SET", name, "down-after-milliseconds", DOWN_AFTER_MS)

    def forget(self, name: str) -> None:
        for sentinel_port in self.sentinel_ports:
            self.sentinel(sentinel_port).execute_command("SENTINEL", "REMOVE", name)

    def sentinel(self, port: int | None = None) -> redis.Redis:
        return redis.Redis(port=port or self.sentinel_ports[0], socket_timeout=1, socket_connect_timeout=1)

    def master_port(self) -> int | None:
        """The master the sentinels name now (None while they name none or disagree)."""
        named = set()
        for port in self.sentinel_ports:
            try:
                named.add(int(self.sentinel(port).sentinel_get_master_addr_by_name(MASTER_NAME)[1]))
            except (redis.RedisError, TypeError):
                return None
        return named.pop() if len(named) == 1 else None

    def promotions(self) -> int:
        """Failovers so far: the master's configuration epoch, which each failover raises by one."""
        try:
            return int(self.sentinel().sentinel_master(MASTER_NAME)["config-epoch"])
        except (redis.RedisError, KeyError):
            return -1

    def replica_in_sync(self, port: int) -> bool:
        try:
            info = redis.Redis(port=port, socket_timeout=1).info("replication")
        except redis.RedisError:
            return False
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    def kill(self, port: int) -> None:
        process = self.processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def freeze(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGSTOP)

    def thaw(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGCONT)

    def restart_as_replica(self, port: int, *, of: int) -> None:
        """The killed master comes back (as a supervisor would restart it), as a replica of the new one that
        Sentinel may not promote until it holds the data again (`rejoined`)."""
        self.start_data_node(port, replica_of=of, promotable=False)

    def hold_promotion(self, port: int) -> None:
        """Sentinel may not promote this node (`replica-priority 0`) until `rejoined` says it may."""
        redis.Redis(port=port, socket_timeout=1).config_set("replica-priority", 0)

    def rejoined(self, port: int, *, timeout: float) -> bool:
        """Once the node has finished its resync, Sentinel may promote it again. Before, a second failover
        would make a master of a node without the data only the other one holds."""
        if not wait_for(lambda: self.replica_in_sync(port), timeout=timeout):
            return False
        redis.Redis(port=port, socket_timeout=1).config_set("replica-priority", 100)
        return True

    def wait_for_promotion(self, *, old: int, timeout: float) -> float:
        """Seconds until every sentinel names another master than `old`, and it answers as a master."""
        started = time.monotonic()

        def promoted() -> bool:
            new = self.master_port()
            if new is None or new == old:
                return False
            try:
                return redis.Redis(port=new, socket_timeout=1).info("replication")["role"] == "master"
            except redis.RedisError:
                return False

        assert wait_for(promoted, timeout=timeout, interval=0.05), "Sentinel did not promote the replica"
        return time.monotonic() - started

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a frozen one too
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
