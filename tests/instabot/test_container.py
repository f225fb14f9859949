"""The container image, built by scripts/container.sh and run with podman: web, worker and cache_sync
from the one image, against this machine's PostgreSQL and Redis, answering a signed webhook through the
fake Graph API (all on the host network).

Runs in the PostgreSQL pass only: the image is built once per CI run, and production runs on PostgreSQL.
Skips, saying why, only where podman cannot run containers on this machine.
"""

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from automations.models import Automation
from devtools.fake_graph_api import FakeGraphAPI
from tests.conftest import ACCOUNT_ID, TOKEN
from tests.instabot.support import parse_metrics, value
from tests.support.processes import ROOT
from tests.support.stack import free_port, wait_for
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload
from webhooks.signatures import sign_body

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# scripts/container.sh's "podman cannot run containers here".
CANNOT_RUN = 77
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}
SECRET_KEY = "container-test-secret-key-" + "q8Vz3LmW5tR1yH7k" * 3


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "--runtime", "runc", *args],
        env=PODMAN_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def image() -> str:
    if connection.vendor != "postgresql":
        pytest.skip("the container image is built and run in the PostgreSQL pass only")
    result = subprocess.run(
        ["bash", "scripts/container.sh", "build"],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode == CANNOT_RUN:
        pytest.skip((result.stderr.strip().splitlines() or ["podman cannot run containers here"])[-1])
    assert result.returncode == 0, result.stderr[-4000:]
    # The script prints the image's name, one per checkout (two checkouts never run each other's code).
    return result.stdout.strip().splitlines()[-1]


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Containers:
    """Containers of one test, by name; all removed at the end."""

    def __init__(self, image: str, env_file: Path, *, url: str) -> None:
        self.image = image
        self.env_file = env_file
        self.url = url
        self.prefix = f"instabot-test-{uuid.uuid4().hex[:8]}"
        self.names: list[str] = []

    def run(self, role: str, *command: str) -> str:
        name = f"{self.prefix}-{role}"
        result = podman(
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "host",
            "--env-file",
            str(self.env_file),
            # Runs the image's HEALTHCHECK only when asked (podman would schedule it with systemd).
            "--health-interval",
            "disable",
            self.image,
            *command,
        )
        assert result.returncode == 0, result.stderr
        self.names.append(name)
        return name

    def run_once(self, *command: str) -> subprocess.CompletedProcess[str]:
        return podman(
            "run", "--rm", "--network", "host", "--env-file", str(self.env_file), self.image, *command, timeout=180
        )

    def logs(self, name: str) -> str:
        result = podman("logs", name)
        return result.stdout + result.stderr

    def all_logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.logs(name)}" for name in self.names)

    def remove(self) -> None:
        for name in self.names:
            # SIGTERM first: the worker takes itself out of Redis and the listeners close their connections.
            podman("stop", "--time", "20", name)
            podman("rm", "--force", name)


@pytest.fixture
def containers(image: str, graph: FakeGraphAPI, tmp_path: Path) -> Iterator[Containers]:
    port = free_port()
    env = {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "INSTAGRAM_APP_SECRET": settings.INSTAGRAM_APP_SECRET,
        "INSTAGRAM_VERIFY_TOKEN": settings.INSTAGRAM_VERIFY_TOKEN,
        # The tests' key: the workspace's access token was encrypted with it by this process.
        "INSTABOT_ENCRYPTION_KEY": os.environ["INSTABOT_ENCRYPTION_KEY"],
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "INSTABOT_KEY_PREFIX": settings.INSTABOT_KEY_PREFIX,
        "GRAPH_API_BASE_URL": graph.base_url,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "4",
        "CONCURRENCY": "10",
    }
    env_file = tmp_path / "instabot.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    running = Containers(image, env_file, url=f"http://127.0.0.1:{port}")
    yield running
    running.remove()


def post_dm(url: str, *, sender: str) -> None:
    body = encode_payload(
        sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text="price", sender_id=sender)
    )
    response = requests.post(
        f"{url}/api/webhooks/instagram",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign_body(body=body, secret=settings.INSTAGRAM_APP_SECRET),
            # As the TLS-terminating proxy in front says: production settings redirect plain HTTP.
            "X-Forwarded-Proto": "https",
        },
        timeout=5,
    )
    assert response.status_code == 200, response.text


def reply_to(graph: FakeGraphAPI, sender: str) -> str | None:
    for call in graph.calls():
        if call.body.get("recipient", {}).get("id") == sender:
            return str(call.body["message"]["text"])
    return None


def answers(url: str, path: str) -> bool:
    try:
        return requests.get(f"{url}{path}", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_the_image_serves_a_signed_webhook_and_its_worker_answers_through_the_graph_api(
    containers: Containers, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    url = containers.url
    # release: migrations against the database the tests made (nothing to apply, and no error).
    release = containers.run_once("python3", "manage.py", "migrate", "--noinput")
    assert release.returncode == 0, release.stdout + release.stderr

    web = containers.run("web")  # the image's default command: gunicorn
    worker = containers.run("worker", "python3", "manage.py", "rqworker", "high", "default", "low")
    cache_sync = containers.run("cache_sync", "python3", "manage.py", "cache_sync")

    assert wait_for(lambda: answers(url, "/readyz"), timeout=60), containers.all_logs()
    assert podman("healthcheck", "run", web).returncode == 0, containers.logs(web)
    assert wait_for(lambda: "cache_sync: following" in containers.logs(cache_sync), timeout=30), containers.logs(
        cache_sync
    )
    assert wait_for(
        lambda: value(parse_metrics(requests.get(f"{url}/metrics", timeout=5).text), "instabot_workers") == 1,
        timeout=60,
    ), containers.logs(worker)

    post_dm(url, sender="container-1")
    assert wait_for(lambda: reply_to(graph, "container-1") is not None, timeout=30), containers.all_logs()
    assert reply_to(graph, "container-1") == "DM: prices here"
    assert graph.calls()[0].token == TOKEN

    # A write that bypasses Django's signals: only cache_sync (LISTEN/NOTIFY) can tell the worker's cache.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE automations_automation SET reply_text = %s WHERE id = %s", ["Changed in SQL", automations["dm"].pk]
        )
    senders = iter(f"container-{n}" for n in range(2, 1000))

    def next_reply_is_new() -> bool:
        sender = next(senders)
        post_dm(url, sender=sender)
        wait_for(lambda: reply_to(graph, sender) is not None, timeout=10)
        return reply_to(graph, sender) == "Changed in SQL"

    assert wait_for(next_reply_is_new, timeout=30, interval=0.5), containers.all_logs()

    # What the worker counted reaches the web process's /metrics through Redis (flushed every half second).
    def replied() -> float:
        samples = parse_metrics(requests.get(f"{url}/metrics", timeout=5).text)
        return value(samples, "instabot_events_total", kind="dm", outcome="replied") or 0

    assert wait_for(lambda: replied() >= 2, timeout=5), containers.logs(worker)

    # Every process runs as the unprivileged user, with no compiler and no pip.
    assert podman("exec", web, "id", "-u").stdout.strip() == "10001"
    tools = podman(
        "exec",
        worker,
        "python3",
        "-c",
        "import shutil; print([t for t in ('gcc', 'cc', 'make', 'pip') if shutil.which(t)])",
    )
    assert tools.stdout.strip() == "[]", tools.stderr

    logs = containers.all_logs()
    for secret in (TOKEN, settings.INSTAGRAM_APP_SECRET, SECRET_KEY, os.environ["INSTABOT_ENCRYPTION_KEY"]):
        assert secret not in logs
