"""The Kubernetes manifests: valid against the Kubernetes schemas, commands and env vars real,
workers drain within their grace period, autoscaling on metrics the gateway really exports."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys

import pytest

from tests.support import REPO
from workmesh.services.cli import build_parser

sys.path.insert(0, str(REPO / "deploy"))  # check_k8s imports check_compose beside it, as when run as a script
_spec = importlib.util.spec_from_file_location("check_k8s", REPO / "deploy" / "check_k8s.py")
check_k8s = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_k8s)

pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (a dev extra) is not installed")


@pytest.fixture(scope="module")
def docs():
    rendered, _ = check_k8s.render(REPO / "deploy" / "k8s" / "overlays" / "example")
    return rendered


def named(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_repository_manifests_pass_the_ci_check():
    proc = subprocess.run(
        [sys.executable, "deploy/check_k8s.py"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deploy/k8s/base:" in proc.stdout and "deploy/k8s/overlays/example:" in proc.stdout


def test_the_layout_has_what_production_needs(docs):
    gateway = named(docs, "Deployment", "workmesh-gateway")
    assert gateway["spec"]["replicas"] >= 2
    assert named(docs, "PodDisruptionBudget", "workmesh-gateway")["spec"]["minAvailable"] >= 1
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"][:2] == ["workmesh", "health"]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for kind, name in (
        ("Service", "workmesh-gateway"),
        ("Service", "workmesh-results"),
        ("Deployment", "workmesh-results"),
        ("ConfigMap", "workmesh-config"),
        ("Secret", "workmesh-secrets"),
        ("Secret", "workmesh-tls"),
        ("Deployment", "workmesh-worker-heat-demand"),
        ("ScaledObject", "workmesh-worker-heat-demand"),
    ):
        assert (kind, name) in kinds
    assert all(d["metadata"].get("namespace") == "workmesh" for d in docs)


def test_the_queue_depth_metric_name_is_the_one_exported():
    names = check_k8s.exported_metrics()
    assert "workmesh_gateway_queue_depth" in names
    assert "workmesh_worker_jobs_running" in names
    assert "workmesh_gateway_job_transitions_total" in names  # counters get _total
    assert check_k8s.prometheus_name("a.b.latency", "ms", False, False) == "a_b_latency_milliseconds"


def test_schema_errors_are_found(docs):
    # The first error of each manifest is reported: one fault per copy.
    wrong_type = copy.deepcopy(named(docs, "Deployment", "workmesh-gateway"))
    wrong_type["spec"]["replicas"] = "two"
    misspelt = copy.deepcopy(named(docs, "Deployment", "workmesh-gateway"))
    misspelt["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    scaled = copy.deepcopy(named(docs, "ScaledObject", "workmesh-worker-heat-demand"))
    scaled["spec"]["maxReplicas"] = 3  # KEDA's field is maxReplicaCount
    problems = check_k8s.check_schemas([wrong_type, misspelt, scaled], "1.30")
    assert len(problems) == 3, problems
    assert any("replicas" in p for p in problems), problems
    assert any("livenesProbe" in p for p in problems), problems
    assert any("maxReplicas" in p for p in problems), problems


def test_commands_env_and_drain_are_checked(docs):
    docs = copy.deepcopy(docs)
    gateway = named(docs, "Deployment", "workmesh-gateway")["spec"]["template"]["spec"]["containers"][0]
    gateway["args"] = ["gateway", "--port", "50051"]
    gateway["env"].append({"name": "WORKMESH_GATEWAY_PORT", "value": "1"})
    worker_pod = named(docs, "Deployment", "workmesh-worker-kpi-peak-ratio")["spec"]["template"]["spec"]
    worker_pod["terminationGracePeriodSeconds"] = 30
    worker_pod["containers"][0]["env"].append({"name": "WORKMESH_WORKER_DRAIN_GRACE", "value": "1m"})
    del worker_pod["containers"][0]["lifecycle"]
    heat = named(docs, "Deployment", "workmesh-worker-heat-demand")["spec"]["template"]["spec"]["containers"][0]
    heat["args"] = ["worker", "workmesh.workers.examples.heat_demand:no_such_worker"]
    heat["readinessProbe"]["exec"]["command"] = ["workmesh", "healthz", "127.0.0.1:50061"]
    problems = check_k8s.check_containers(docs, build_parser(), check_k8s.known_env())
    text = "\n".join(problems)
    assert "--port" in text
    assert "WORKMESH_GATEWAY_PORT is read by no workmesh code" in text
    assert "terminationGracePeriodSeconds 30 must exceed the drain grace plus the cancel grace (65 s)" in text
    assert "preStop" in text
    assert "no_such_worker" in text
    assert "'healthz' is not a workmesh subcommand" in text
    assert "POD_IP" not in text  # used as $(POD_IP) in the advertise address: a helper, not a setting


def test_every_registering_service_advertises_its_pod_ip(docs):
    assert not [p for p in check_k8s.check_containers(docs, build_parser(), check_k8s.known_env()) if "pod IP" in p]
    docs = copy.deepcopy(docs)
    gateway = named(docs, "Deployment", "workmesh-gateway")["spec"]["template"]["spec"]["containers"][0]
    gateway["env"] = [e for e in gateway["env"] if e["name"] != "WORKMESH_GATEWAY_ADVERTISE"]
    results = named(docs, "Deployment", "workmesh-results")["spec"]["template"]["spec"]["containers"][0]
    for item in results["env"]:
        if item["name"] == "POD_IP":
            item["valueFrom"] = {"fieldRef": {"fieldPath": "metadata.name"}}
    problems = check_k8s.check_containers(docs, build_parser(), check_k8s.known_env())
    advertise = [p for p in problems if "pod IP" in p]
    assert len(advertise) == 2, problems
    assert "workmesh-gateway" in advertise[0] and "WORKMESH_GATEWAY_ADVERTISE" in advertise[0]
    assert "workmesh-results" in advertise[1] and "WORKMESH_RESULTS_ADVERTISE to the pod IP" in advertise[1]


def test_autoscaling_metrics_and_types_are_checked(docs):
    docs = copy.deepcopy(docs)
    scaled = named(docs, "ScaledObject", "workmesh-worker-heat-demand")
    scaled["spec"]["triggers"][0]["metadata"]["query"] = (
        'sum(workmesh_gateway_queue_length{workflow_type="heat-demand"}) + sum(workmesh_gateway_queue_depth'
        '{workflow_type="kpi-peak-ratio"})'
    )
    problems = check_k8s.check_scaling(docs, check_k8s.exported_metrics())
    assert any("workmesh_gateway_queue_length is not a metric" in p for p in problems), problems
    assert any("'kpi-peak-ratio' is not served" in p for p in problems), problems
    assert len(problems) == 2


def security_problems(docs):
    return [
        p
        for p in check_k8s.check_containers(docs, build_parser(), check_k8s.known_env())
        if "WORKMESH_AUTH" in p or "WORKMESH_TLS" in p or "WORKMESH_SERIES_KEY" in p or "plaintext" in p or "GRPCS" in p
    ]


def test_every_service_runs_with_authentication_and_tls(docs):
    assert not security_problems(docs)
    config = named(docs, "ConfigMap", "workmesh-config")["data"]
    assert config["WORKMESH_AUTH"] == "on" and config["WORKMESH_TLS_CA"] == "/etc/workmesh/tls/ca.crt"
    for name in ("workmesh-gateway", "workmesh-results", "workmesh-worker-heat-demand"):
        pod = named(docs, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["volumes"][0]["secret"]["secretName"] == "workmesh-mesh-tls"
        assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/etc/workmesh/tls"


def test_a_plaintext_or_unauthenticated_service_fails_the_check(docs):
    docs = copy.deepcopy(docs)
    named(docs, "ConfigMap", "workmesh-config")["data"]["WORKMESH_AUTH"] = "off"
    results = named(docs, "Deployment", "workmesh-results")["spec"]["template"]["spec"]["containers"][0]
    del results["volumeMounts"]
    results["env"] = [e for e in results["env"] if e["name"] != "WORKMESH_SERIES_KEY"]
    kpi = named(docs, "Deployment", "workmesh-worker-kpi-peak-ratio")["spec"]["template"]["spec"]["containers"][0]
    kpi["env"] = [e for e in kpi["env"] if e["name"] != "WORKMESH_TLS_CLIENT_AUTH"]
    heat = named(docs, "Deployment", "workmesh-worker-heat-demand")["spec"]["template"]["spec"]["containers"][0]
    heat["livenessProbe"] = {"grpc": {"port": 50061}}
    named(docs, "Secret", "workmesh-mesh-tls")["stringData"].pop("ca.crt")
    named(docs, "Service", "workmesh-gateway")["spec"]["ports"][0]["appProtocol"] = "kubernetes.io/h2c"
    named(docs, "Ingress", "workmesh-gateway")["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/backend-protocol"
    ] = "GRPC"
    problems = check_k8s.check_containers(docs, build_parser(), check_k8s.known_env())
    text = "\n".join(problems)
    for where in ("Deployment/workmesh-gateway", "Deployment/workmesh-results"):
        assert f"{where} container" in text and "WORKMESH_AUTH must be on" in text
    assert sum("WORKMESH_AUTH must be on" in p for p in problems) == 2, problems  # workers do not authenticate
    assert "workmesh-results container results: WORKMESH_SERIES_KEY is not passed" in text
    for var in ("WORKMESH_TLS_CERT", "WORKMESH_TLS_KEY"):
        assert f"workmesh-results container results: {var}=/etc/workmesh/tls/" in text
    # ca.crt gone from the Secret: no container has the CA any more.
    assert sum("WORKMESH_TLS_CA=/etc/workmesh/tls/ca.crt is no file" in p for p in problems) == 4, problems
    assert "workmesh-worker-kpi-peak-ratio container worker: WORKMESH_TLS_CLIENT_AUTH must be on" in text
    assert "workmesh-worker-heat-demand container worker: livenessProbe is a grpc probe" in text
    assert "Service/workmesh-gateway port grpc: appProtocol kubernetes.io/h2c declares plaintext" in text
    assert "Ingress/workmesh-gateway: nginx.ingress.kubernetes.io/backend-protocol must be GRPCS" in text
