"""The deployment files: compose file valid, our image's commands real, Dockerfile sources present."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests.support import REPO
from workmesh.services.cli import build_parser

_spec = importlib.util.spec_from_file_location("check_compose", REPO / "deploy" / "check_compose.py")
check_compose = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_compose)

needs_compose_tool = pytest.mark.skipif(
    check_compose.compose_tool() is None, reason="no docker-compose / docker compose installed here"
)


def test_repository_compose_file_passes_the_ci_check():
    proc = subprocess.run(
        [sys.executable, "deploy/check_compose.py"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "docker-compose.yml: ok" in proc.stdout


def test_every_image_service_is_checked():
    compose = check_compose.load_compose(REPO / "docker-compose.yml")
    ours = check_compose.workmesh_services(compose)
    assert set(ours) == {"gateway", "results", "worker-heat", "worker-kpi", "worker-basic"}
    assert ours["worker-heat"]["deploy"]["replicas"] == 2
    for name in ("consul", "postgres", "influxdb", "jaeger", "otel-collector"):
        assert name not in ours


def test_traces_go_to_jaeger_and_metrics_to_the_collector():
    import yaml

    compose = check_compose.load_compose(REPO / "docker-compose.yml")
    for name, service in check_compose.workmesh_services(compose).items():
        env = service["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317", name
        assert env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] == "http://otel-collector:4317", name
        assert env["OTEL_SERVICE_NAME"].startswith("workmesh-"), name
        assert env["CONSUL_HTTP_ADDR"] == "consul:8500", name
    assert compose["services"]["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    collector = yaml.safe_load((REPO / "deploy" / "otel-collector.yaml").read_text())
    pipeline = collector["service"]["pipelines"]["metrics"]
    assert pipeline["receivers"] == ["otlp"] and pipeline["exporters"] == ["prometheus"]
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    mounted = compose["services"]["otel-collector"]["volumes"][0]
    assert mounted.startswith("./deploy/otel-collector.yaml:")


BROKEN = """
services:
  good:
    image: workmesh:test
    build: {context: ., dockerfile: deploy/Dockerfile}
    command: ["worker", "workmesh.workers.examples.kpi:worker"]
    healthcheck: {test: ["CMD", "workmesh", "health", "127.0.0.1:50061"]}
  typo:
    image: workmesh:test
    command: ["gatewy"]
  bad-option:
    image: workmesh:test
    command: results --store mongo
  bad-target:
    image: workmesh:test
    command: ["worker", "workmesh.workers.examples.kpi:no_such_worker"]
  missing-module:
    image: workmesh:test
    command: ["worker", "workmesh.workers.examples.nope:worker"]
  bad-health:
    image: workmesh:test
    command: ["gateway"]
    healthcheck: {test: "workmesh helth 127.0.0.1:50051"}
  no-command:
    image: workmesh:test
  other-image:
    image: postgres:15
    command: ["whatever"]
"""


def test_problems_are_reported_per_service(tmp_path):
    path = tmp_path / "docker-compose.yml"
    path.write_text(BROKEN)
    problems = check_compose.check_commands(check_compose.load_compose(path), build_parser())
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert re.search(r"services\.typo\.command: 'gatewy' is not a workmesh subcommand \(known: .*gateway", text)
    assert re.search(r"services\.bad-option\.command: .*rejected by the CLI: .*mongo", text)
    assert re.search(r"services\.bad-target\.command: worker target .*no_such_worker.* does not load", text)
    assert re.search(r"services\.missing-module\.command: worker target .*nope.* does not load", text)
    assert re.search(r"services\.bad-health\.healthcheck: 'helth' is not a workmesh subcommand", text)
    assert "services.no-command.command: no command" in text
    assert "good" not in text and "other-image" not in text


def test_main_exits_nonzero_on_problems(tmp_path, capsys):
    path = tmp_path / "docker-compose.yml"
    path.write_text(BROKEN)
    assert check_compose.main([str(path)]) == 1
    assert "gatewy" in capsys.readouterr().out


@needs_compose_tool
def test_compose_tool_rejects_a_broken_file(tmp_path):
    path = tmp_path / "docker-compose.yml"
    path.write_text("services:\n  a:\n    image: x\n    depends_on: [nowhere]\n")
    (problem,) = check_compose.check_with_compose_tool(path, check_compose.compose_tool())
    assert "config -q` failed" in problem and "nowhere" in problem


def test_dockerfile_copy_sources(tmp_path):
    assert check_compose.check_dockerfile(REPO / "deploy" / "Dockerfile") == []
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nCOPY pyproject.toml nothere/ ./\nCOPY --from=build /a /b\n")
    assert check_compose.check_dockerfile(dockerfile) == [f"{dockerfile}:2: COPY source 'nothere/' does not exist"]


def test_entrypoint_advertises_the_container_hostname(tmp_path):
    """deploy/entrypoint.sh alone: a stand-in `workmesh` on PATH prints what the real one would get."""
    stub = tmp_path / "workmesh"
    stub.write_text('#!/bin/sh\necho "args=$*"\nenv | grep ADVERTISE | sort\n')
    stub.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOSTNAME": "c0ffee123456"}
    out = subprocess.run(
        ["sh", str(REPO / "deploy" / "entrypoint.sh"), "worker", "m:w"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "args=worker m:w" in out
    for var in (
        "WORKMESH_ADVERTISE_HOST",
        "WORKMESH_WORKER_ADVERTISE",
        "WORKMESH_RESULTS_ADVERTISE",
        "WORKMESH_GATEWAY_ADVERTISE",
    ):
        assert f"{var}=c0ffee123456" in out
    env["WORKMESH_WORKER_ADVERTISE"] = "10.0.0.7"
    out = subprocess.run(
        ["sh", str(REPO / "deploy" / "entrypoint.sh"), "worker", "m:w"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "WORKMESH_WORKER_ADVERTISE=10.0.0.7" in out  # an explicit setting wins
    assert os.access(REPO / "deploy" / "entrypoint.sh", os.X_OK)


def test_consul_server_config_has_the_production_settings():
    hcl = (REPO / "deploy" / "consul" / "server.hcl").read_text()
    settings = {
        "server": "true",
        "bootstrap_expect": "1",
        "client_addr": '"0.0.0.0"',
        "data_dir": '"/consul/data"',
    }
    for key, value in settings.items():
        assert re.search(rf"^{key}\s*=\s*{re.escape(value)}\s*$", hcl, re.M), key
    assert re.search(r"ui_config\s*{\s*enabled\s*=\s*true\s*}", hcl)
    assert re.search(r"^\s*http\s*=\s*8500\s*$", hcl, re.M)
    assert hcl.count("{") == hcl.count("}")


def test_the_production_set_runs_with_authentication_and_tls_on():
    import copy

    compose = check_compose.load_compose(REPO / "docker-compose.yml")
    assert check_compose.check_security(compose) == []
    plain = copy.deepcopy(compose)
    gateway = plain["services"]["gateway"]
    gateway["environment"]["WORKMESH_AUTH"] = "off"
    del gateway["environment"]["WORKMESH_TLS_CA"]
    gateway["volumes"] = []
    problems = check_compose.check_security(plain)
    assert any("services.gateway.environment: WORKMESH_AUTH must be on" in p for p in problems), problems
    assert any("WORKMESH_TLS_CA must be set" in p for p in problems), problems
    assert any("services.gateway: WORKMESH_TLS_CERT=" in p and "not under a mounted volume" in p for p in problems)
    assert not any("services.results" in p for p in problems), "each service is judged on its own"
