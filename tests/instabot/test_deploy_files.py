"""The deployment files say what the README says, and the compose file is valid Compose.

The image itself is built and run in tests/instabot/test_container.py.
"""

import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.test import Client

from tests.instabot.support import families
from tests.support.processes import ROOT

DOCKER = ROOT / "docker"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yml").read_text())
    return loaded


def test_compose_runs_every_process_with_health_checks_and_restarts() -> None:
    services = compose()["services"]
    assert {"release", "web", "worker", "cache_sync", "activity", "postgres", "redis"} <= set(services)
    assert services["worker"]["command"].endswith("manage.py rqworker high default low")
    assert services["cache_sync"]["command"].endswith("manage.py cache_sync")
    assert services["activity"]["command"].endswith("manage.py drain_activity --forever")
    assert services["web"]["command"] == "gunicorn instabot.wsgi"
    for name in ("web", "worker", "cache_sync", "activity", "postgres", "redis"):
        assert services[name]["restart"] == "unless-stopped", name
    assert services["release"]["restart"] == "no"
    # Web keeps the image's /healthz check; processes without HTTP turn it off rather than fail it.
    assert "healthcheck" not in services["web"]
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["cache_sync"]["healthcheck"] == {"disable": True}
    assert services["activity"]["healthcheck"] == {"disable": True}
    assert services["postgres"]["healthcheck"]["test"] and services["redis"]["healthcheck"]["test"]
    assert services["web"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["web"]["depends_on"]["release"] == {"condition": "service_completed_successfully"}
    assert services["worker"]["stop_grace_period"] == "30s"
    redis_command = services["redis"]["command"]
    assert "--appendonly yes" in redis_command and "--appendfsync everysec" in redis_command


def compose_errors(document: dict[str, Any]) -> list[str]:
    """What is wrong with a compose document: against the Compose Specification's JSON schema (as
    check-jsonschema ships it), then what a schema cannot say (references between services)."""
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    validator = jsonschema.Draft202012Validator(json.loads(schema_file.read_text()))
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)
    ]
    services = document.get("services", {})
    volumes = set(document.get("volumes") or {})
    for name, service in services.items():
        for needed in service.get("depends_on") or []:
            if needed not in services:
                errors.append(f"services/{name}/depends_on: no service {needed!r}")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/")) and source not in volumes:
                errors.append(f"services/{name}/volumes: no volume {source!r}")
        build = service.get("build")
        if isinstance(build, dict) and not (DOCKER / build["context"] / build["dockerfile"]).is_file():
            errors.append(f"services/{name}/build: no {build['dockerfile']} in {build['context']}")
    return errors


def test_compose_file_is_valid_compose() -> None:
    assert compose_errors(compose()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["services"]["web"].update(restrat="always"), "'restrat' was unexpected"),
        (lambda c: c["services"]["worker"].update(stop_grace_period={"s": 30}), "services/worker/stop_grace_period"),
        (lambda c: c["services"]["web"]["depends_on"].update(redis={"condition": "healthy"}), "services/web"),
        (lambda c: c["services"]["web"]["depends_on"].update(cache={"condition": "service_started"}), "no service"),
        (lambda c: c["services"]["redis"].update(volumes=["redis-data:/data"]), "no volume 'redis-data'"),
    ],
)
def test_compose_check_catches_a_broken_file(change: Any, expected: str) -> None:
    broken = compose()
    change(broken)
    assert any(expected in error for error in compose_errors(broken)), compose_errors(broken)


def test_podman_compose_reads_the_compose_file_as_written() -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed here (scripts/container.sh installs it): podman-compose needs it")
    result = subprocess.run(
        [sys.executable, "-m", "podman_compose", "-f", str(DOCKER / "compose.yml"), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    # podman-compose has merged the x-instabot anchor into each process: what it would run is valid too.
    assert compose_errors(resolved) == []
    assert resolved["services"]["worker"]["command"] == ["python3", "manage.py", "rqworker", "high", "default", "low"]
    assert resolved["services"]["cache_sync"]["build"]["context"] == str(ROOT)
    assert resolved["services"]["web"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_dockerfile_is_multi_stage_non_root_and_checks_healthz() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    stages = dict(
        (match.group(2) or "final", match.group(1)) for match in re.finditer(r"^FROM (\S+)(?: AS (\w+))?$", text, re.M)
    )
    # runtime (Python and the user) from the chosen base; build and final both start from it.
    assert stages == {"runtime": "${BASE_IMAGE}", "build": "runtime", "final": "runtime"}
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, flags=re.MULTILINE)
    runtime, build, final = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    # On a bare Debian base the runtime stage installs Python from Debian's packages, and nothing to compile with.
    installed = re.search(r"missing=\"python3 python3-venv\"", runtime)
    assert installed and "--no-install-recommends" in runtime
    assert not re.search(r"gcc|g\+\+|build-essential|-dev\b|make", text)
    assert "pip install --only-binary=:all:" in build
    assert re.search(r"^USER instabot$", final, flags=re.MULTILINE)
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert "collectstatic" in final
    assert "apt-get" not in final and "pip install" not in final


def test_procfile_and_systemd_units_run_the_same_commands() -> None:
    procfile = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line and ": " in line
    )
    assert procfile["web"] == "gunicorn instabot.wsgi"
    assert procfile["worker"] == "python manage.py rqworker high default low"
    assert procfile["cache_sync"] == "python manage.py cache_sync"
    assert procfile["activity"] == "python manage.py drain_activity --forever"
    units = {path.name: path.read_text() for path in (DOCKER / "systemd").glob("*.service")}
    assert set(units) == {
        "instabot-web.service",
        "instabot-worker@.service",
        "instabot-cache-sync.service",
        "instabot-activity.service",
    }
    assert "ExecStart=/srv/instabot/.venv/bin/gunicorn instabot.wsgi" in units["instabot-web.service"]
    assert "manage.py rqworker high default low" in units["instabot-worker@.service"]
    assert "manage.py cache_sync" in units["instabot-cache-sync.service"]
    assert "manage.py drain_activity --forever" in units["instabot-activity.service"]
    for text in units.values():
        assert "User=instabot" in text and "Restart=always" in text


@pytest.mark.django_db
def test_alert_rules_use_only_metrics_that_exist(client: Client) -> None:
    served = families(client.get("/metrics").content.decode()) | {"up"}
    rules = yaml.safe_load((DOCKER / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {"InstabotQueueBacklogGrowing", "InstabotDeadLettersRising", "InstabotNoWorkerAlive"} <= {
        rule["alert"] for rule in rules
    }
    for rule in rules:
        names = set(re.findall(r"\b(instabot_[a-z_]+|up)\b", rule["expr"]))
        assert names, rule["alert"]
        # A counter is exposed as <family>_total.
        assert {re.sub(r"_total$", "", name) for name in names} <= served, rule["alert"]
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_compose_mounts_the_prometheus_directory() -> None:
    prometheus = compose()["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert Path(DOCKER / prometheus["volumes"][0].split(":")[0]).resolve() == (DOCKER / "prometheus").resolve()
