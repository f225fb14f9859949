"""A small asyncio HTTP/1.1 keep-alive load generator for signed webhooks (no dependencies).

Open loop (`run_at_rate`): request i is due at start + i / rate and its latency counts from that due
time, so a server that falls behind is charged for the queueing it causes. Closed loop (`run_burst`):
as fast as `connections` keep-alive connections allow.
"""

import asyncio
import hashlib
import hmac
import json
import time
import zlib
from dataclasses import dataclass, field

FIRST_ACCOUNT_ID = 17841400000000001
# Webhooks are spread over this many connected accounts (seed_demo --accounts): Meta lets one account
# send at most 100 messages a second, which Instabot enforces, so 2M webhooks an hour is many accounts.
ACCOUNTS = 50
PATH = "/api/webhooks/instagram"


def signed_dm_request(*, host: str, port: int, secret: str, sender: str) -> bytes:
    """One POST of a Meta-shaped DM webhook, signed as Meta signs it, as raw bytes."""
    ms = int(time.time() * 1000)
    account_id = str(FIRST_ACCOUNT_ID + zlib.crc32(sender.encode()) % ACCOUNTS)
    payload = {
        "object": "instagram",
        "entry": [
            {
                "id": account_id,
                "time": ms,
                "messaging": [
                    {
                        "sender": {"id": sender},
                        "recipient": {"id": account_id},
                        "timestamp": ms,
                        "message": {"mid": f"bench.{sender}", "text": "price?"},
                    }
                ],
            }
        ],
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class LoadResult:
    sent: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return int(status_line.split()[1]) if status_line else 0


async def _connect(host: str, port: int, count: int) -> asyncio.Queue[_Connection]:
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(count):
        reader, writer = await asyncio.open_connection(host, port)
        pool.put_nowait(_Connection(reader, writer))
    return pool


async def _send(
    pool: asyncio.Queue[_Connection], raw: bytes, due: float, result: LoadResult, host: str, port: int
) -> None:
    conn = await pool.get()
    try:
        status = await asyncio.wait_for(conn.request(raw), timeout=10)
    except (TimeoutError, OSError, ValueError, IndexError):
        status = 0
        conn.writer.close()
        reader, writer = await asyncio.open_connection(host, port)
        conn = _Connection(reader, writer)
    pool.put_nowait(conn)
    result.sent += 1
    if status != 200:
        result.errors += 1
    result.latencies_ms.append((time.perf_counter() - due) * 1000)


async def _run(
    requests: list[bytes], host: str, port: int, connections: int, rate: float | None, seconds: float | None = None
) -> LoadResult:
    pool = await _connect(host, port, connections)
    result = LoadResult()
    loop_start = time.perf_counter()
    result.started_at = time.time()
    if rate:
        tasks = []
        for i, raw in enumerate(requests):
            due = loop_start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(pool, raw, due, result, host, port)))
        await asyncio.gather(*tasks)
    else:
        pending = iter(requests)
        stop_at = loop_start + seconds if seconds else float("inf")

        async def closed_loop() -> None:
            for raw in pending:
                if time.perf_counter() > stop_at:
                    return
                await _send(pool, raw, time.perf_counter(), result, host, port)

        await asyncio.gather(*(closed_loop() for _ in range(connections)))
    result.finished_at = time.time()
    while not pool.empty():
        pool.get_nowait().writer.close()
    return result


def run_at_rate(requests: list[bytes], *, host: str, port: int, rate: float, connections: int = 64) -> LoadResult:
    return asyncio.run(_run(requests, host, port, connections, rate))


def run_burst(
    requests: list[bytes], *, host: str, port: int, connections: int = 32, seconds: float | None = None
) -> LoadResult:
    """As fast as the connections allow, until the requests run out or `seconds` have passed."""
    return asyncio.run(_run(requests, host, port, connections, None, seconds))
