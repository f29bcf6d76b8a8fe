"""Prometheus finds every pod that serves /metrics, the alert rules and
dashboards use the metric names the services emit, and the dashboards are the
generator's current output."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1]
PROM = DEPLOY / "observability" / "prometheus"
GRAFANA = DEPLOY / "observability" / "grafana"

# The services' metric contract (crates/chassis telemetry), plus what the
# platform provides: scrape series, cAdvisor and kube-state-metrics.
SERVICE_METRICS = {
    "http_server_requests_total", "http_server_errors_total", "http_server_requests_in_flight",
    "http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_sum", "http_server_request_duration_seconds_count",
    "grpc_server_requests_total", "grpc_server_errors_total",
    "grpc_server_request_duration_seconds_bucket", "grpc_server_request_duration_seconds_sum", "grpc_server_request_duration_seconds_count",
    "emporium_outbox_lag_seconds", "emporium_consumer_lag_messages",
    # notification's own (services/notification/src/telemetry.rs)
    "notification_messages_sent_total", "notification_send_failures_total", "notification_events_total",
}
PLATFORM_METRICS = {
    "up", "scrape_duration_seconds", "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
    "kube_pod_container_status_restarts_total", "kube_pod_container_resource_requests", "kube_pod_container_resource_limits",
}
PROMQL_WORDS = {
    "sum", "max", "min", "count", "avg", "rate", "increase", "histogram_quantile", "by", "on", "and", "unless", "or",
    "offset", "label_values", "without", "ignoring", "group_left", "group_right", "absent",
}
K8S_SD_KEYS = {"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata", "basic_auth",
               "authorization", "oauth2", "tls_config", "proxy_url", "follow_redirects", "enable_http2"}
K8S_SD_ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhd]|e|Inf|s|m|h", w)}


def _load_generator():
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboards_are_the_generators_current_output():
    generated = _load_generator().render_all()
    on_disk = {p for p in GRAFANA.glob("*.json")}
    assert set(generated) == on_disk, "dashboards missing or left over: run deploy/observability/grafana/generate.py"
    for path, text in generated.items():
        assert path.read_text() == text, f"{path.name} is stale: run deploy/observability/grafana/generate.py"


def test_every_service_has_a_dashboard(overlays):
    for ov in overlays.values():
        for w in ov.workloads:
            if w.labels.get("emporium.io/scrape") == "true":
                assert (GRAFANA / f"{w.app}-overview.json").exists(), f"no dashboard for {w.app}"


def test_dashboards_query_known_metrics_through_the_datasource_variable():
    uids = set()
    for path in GRAFANA.glob("*.json"):
        board = json.loads(path.read_text())
        assert board["uid"] not in uids, f"duplicate uid {board['uid']}"
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == "${datasource}", f"{path.name}: {panel['title']}"
                unknown = _metric_names(target["expr"]) - SERVICE_METRICS - PLATFORM_METRICS
                assert not unknown, f"{path.name}: {panel['title']}: unknown metrics {unknown}"


def test_service_specific_metrics_are_the_ones_the_code_registers():
    """The per-service names above are registered by that service's telemetry
    (prometheus-client appends `_total` to counters)."""
    repo = DEPLOY.parent
    for metric in sorted(m for m in SERVICE_METRICS if m.startswith("notification_")):
        source = (repo / "services" / "notification" / "src" / "telemetry.rs").read_text()
        assert f'"{metric.removesuffix("_total")}"' in source, f"{metric} is not registered in services/notification/src/telemetry.rs"
    # The event metrics come from crates/eventbus (outbox relay, consumer lag).
    eventbus = "\n".join(p.read_text() for p in (repo / "crates" / "eventbus" / "src").rglob("*.rs"))
    for metric in sorted(m for m in SERVICE_METRICS if m.startswith("emporium_")):
        assert f'"{metric}"' in eventbus, f"{metric} is used by alerts or dashboards but crates/eventbus never registers it"


def test_alert_rules_use_known_metrics_and_carry_severity_and_summary():
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    names = {a["alert"] for a in alerts}
    for wanted in ("EmporiumServiceDown", "EmporiumHttpLatencyP99High", "EmporiumHttpErrorRatioHigh", "EmporiumOutboxLagHigh", "EmporiumConsumerLagHigh"):
        assert wanted in names, f"no {wanted} alert"
    for a in alerts:
        assert a["labels"]["severity"] in ("warning", "critical"), a["alert"]
        assert a["annotations"].get("summary"), a["alert"]
        unknown = _metric_names(a["expr"]) - SERVICE_METRICS - PLATFORM_METRICS
        assert not unknown, f"{a['alert']}: unknown metrics {unknown}"


def test_scrape_config_discovers_pods_by_the_label_and_port_the_manifests_use(overlays):
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "emporium")
    # Checked here because Debian's promtool is built without Kubernetes discovery.
    for sd in job["kubernetes_sd_configs"]:
        assert set(sd) <= K8S_SD_KEYS, f"unknown kubernetes_sd_configs keys {set(sd) - K8S_SD_KEYS}"
        assert sd["role"] in K8S_SD_ROLES
        assert set(sd.get("namespaces", {})) <= {"names", "own_namespace"}
        for sel in sd.get("selectors", []):
            assert set(sel) <= {"role", "label", "field"} and sel["role"] in K8S_SD_ROLES, sel
    keeps = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}
    assert keeps[("__meta_kubernetes_pod_label_emporium_io_scrape",)] == "true"
    assert keeps[("__meta_kubernetes_pod_container_port_name",)] == "admin"
    scrape_policy = next(np for np in next(iter(overlays.values())).of_kind("NetworkPolicy") if np["metadata"]["name"] == "allow-prometheus-scrape")
    assert scrape_policy["spec"]["podSelector"]["matchLabels"] == {"emporium.io/scrape": "true"}
    namespaces = {n for sd in job["kubernetes_sd_configs"] for n in sd.get("namespaces", {}).get("names", [])}
    assert namespaces == {"emporium"}
