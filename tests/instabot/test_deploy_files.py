"""The deployment files say what the README says: parsed, not built (no container engine runs here)."""

import re
from pathlib import Path
from typing import Any

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
    assert {"release", "web", "worker", "cache_sync", "postgres", "redis"} <= set(services)
    assert services["worker"]["command"].endswith("manage.py rqworker high default low")
    assert services["cache_sync"]["command"].endswith("manage.py cache_sync")
    assert services["web"]["command"] == "gunicorn instabot.wsgi"
    for name in ("web", "worker", "cache_sync", "postgres", "redis"):
        assert services[name]["restart"] == "unless-stopped", name
    assert services["release"]["restart"] == "no"
    # Web keeps the image's /healthz check; processes without HTTP turn it off rather than fail it.
    assert "healthcheck" not in services["web"]
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["cache_sync"]["healthcheck"] == {"disable": True}
    assert services["postgres"]["healthcheck"]["test"] and services["redis"]["healthcheck"]["test"]
    assert services["web"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["web"]["depends_on"]["release"] == {"condition": "service_completed_successfully"}
    assert services["worker"]["stop_grace_period"] == "30s"
    redis_command = services["redis"]["command"]
    assert "--appendonly yes" in redis_command and "--appendfsync everysec" in redis_command


def test_dockerfile_is_multi_stage_non_root_and_checks_healthz() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) == 2
    final = stages[-1]
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, flags=re.MULTILINE)
    assert all(stage.startswith("${BASE_IMAGE}") for stage in stages)
    assert re.search(r"^USER instabot$", final, flags=re.MULTILINE)
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert "collectstatic" in final
    assert not re.search(r"gcc|build-essential|apt-get install", final)


def test_procfile_and_systemd_units_run_the_same_commands() -> None:
    procfile = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line and ": " in line
    )
    assert procfile["web"] == "gunicorn instabot.wsgi"
    assert procfile["worker"] == "python manage.py rqworker high default low"
    assert procfile["cache_sync"] == "python manage.py cache_sync"
    units = {path.name: path.read_text() for path in (DOCKER / "systemd").glob("*.service")}
    assert set(units) == {"instabot-web.service", "instabot-worker@.service", "instabot-cache-sync.service"}
    assert "ExecStart=/srv/instabot/.venv/bin/gunicorn instabot.wsgi" in units["instabot-web.service"]
    assert "manage.py rqworker high default low" in units["instabot-worker@.service"]
    assert "manage.py cache_sync" in units["instabot-cache-sync.service"]
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
