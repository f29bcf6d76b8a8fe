#!/usr/bin/env python3
"""Writes one Grafana "overview" dashboard per Emporium service.

The services come from deploy/k8s/base/<service>/config.env: a service whose
configuration sets EMPORIUM_<SVC>__HTTP_ADDR gets the HTTP panels, one with
…__GRPC_ADDR the gRPC panels, one with …__MAIL__KIND the mail panels
(notification's metrics); every service gets availability, event (outbox,
consumer lag) and resource panels. So adding a service folder and running this
script adds its dashboard; deploy/tests checks the JSON files are current.

usage: deploy/observability/grafana/generate.py [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = HERE.parents[1] / "k8s" / "base"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def services() -> dict[str, set[str]]:
    """service name -> what it serves or does ({"http", "grpc", "mail"})."""
    out = {}
    for env in sorted(BASE.glob("*/config.env")):
        svc = env.parent.name
        keys = {line.split("=", 1)[0] for line in env.read_text().splitlines() if "=" in line}
        prefix = f"EMPORIUM_{svc.upper()}__"
        if f"{prefix}ADMIN_ADDR" not in keys:
            continue
        out[svc] = {proto for proto, key in (("http", "HTTP_ADDR"), ("grpc", "GRPC_ADDR"), ("mail", "MAIL__KIND")) if prefix + key in keys}
    return out


class Layout:
    """Places panels two to a row, with collapsible section rows."""

    def __init__(self):
        self.panels: list[dict] = []
        self.y = 0
        self.x = 0
        self.line_height = 0

    def _new_line(self):
        self.y += self.line_height
        self.x = 0
        self.line_height = 0

    def row(self, title: str):
        if self.x:
            self._new_line()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def add(self, panel: dict, width: int = 12, height: int = 8):
        if self.x + width > 24:
            self._new_line()
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.x += width
        self.line_height = max(self.line_height, height)
        self.panels.append(panel)


def timeseries(title: str, targets: list[tuple[str, str]], unit: str = "short", description: str = "") -> dict:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"fillOpacity": 10, "lineWidth": 1}}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]}, "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend} for i, (expr, legend) in enumerate(targets)],
    }


def stat(title: str, expr: str, unit: str = "short", thresholds: list[tuple[float | None, str]] | None = None) -> dict:
    steps = [{"value": v, "color": c} for v, c in (thresholds or [(None, "green")])]
    return {
        "type": "stat",
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "background", "graphMode": "area"},
        "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": expr}],
    }


def red_panels(layout: Layout, svc: str, proto: str):
    """Rate, errors, duration for one protocol ("http" or "grpc")."""
    sel = f'namespace="$namespace", service="{svc}"'
    by = "route" if proto == "http" else "method"
    outcome = "status" if proto == "http" else "code"
    m = f"{proto}_server"
    rate = "[$__rate_interval]"
    layout.row(f"{'HTTP' if proto == 'http' else 'gRPC'} ({svc})")
    layout.add(timeseries(f"Requests per second by {by}", [(f"sum by ({by}) (rate({m}_requests_total{{{sel}}}{rate}))", f"{{{{{by}}}}}")], "reqps"))
    layout.add(timeseries(f"Requests per second by {outcome}", [(f"sum by ({outcome}) (rate({m}_requests_total{{{sel}}}{rate}))", f"{{{{{outcome}}}}}")], "reqps"))
    layout.add(
        timeseries(
            "Error ratio",
            [
                (f"sum(rate({m}_errors_total{{{sel}}}{rate})) / sum(rate({m}_requests_total{{{sel}}}{rate}))", "all"),
                (f"sum by ({by}) (rate({m}_errors_total{{{sel}}}{rate})) / sum by ({by}) (rate({m}_requests_total{{{sel}}}{rate}))", f"{{{{{by}}}}}"),
            ],
            "percentunit",
            "Server errors (5xx, or gRPC server-side codes) over all requests. Alerts at 5% (EmporiumHttpErrorRatioHigh / EmporiumGrpcErrorRatioHigh).",
        )
    )
    layout.add(
        timeseries(
            "Latency p50 / p90 / p99",
            [(f"histogram_quantile({q}, sum by (le) (rate({m}_request_duration_seconds_bucket{{{sel}}}{rate})))", f"p{int(q * 100)}") for q in (0.5, 0.9, 0.99)],
            "s",
        )
    )
    layout.add(timeseries(f"p99 latency by {by}", [(f"histogram_quantile(0.99, sum by ({by}, le) (rate({m}_request_duration_seconds_bucket{{{sel}}}{rate})))", f"{{{{{by}}}}}")], "s"))
    if proto == "http":
        layout.add(timeseries("Requests in flight", [(f"sum by (pod) (http_server_requests_in_flight{{{sel}}})", "{{pod}}")]))


def mail_panels(layout: Layout, svc: str):
    """E-mails sent and failed, and what became of the consumed events
    (services/notification/src/telemetry.rs)."""
    sel = f'namespace="$namespace", service="{svc}"'
    rate = "[$__rate_interval]"
    layout.row(f"Mail ({svc})")
    layout.add(timeseries("E-mails delivered per second by kind", [(f"sum by (kind) (rate(notification_messages_sent_total{{{sel}}}{rate}))", "{{kind}}")], "ops"))
    layout.add(
        timeseries(
            "Failed delivery attempts per second",
            [(f"sum(rate(notification_send_failures_total{{{sel}}}{rate}))", "failures")],
            "ops",
            "Each failure is retried with backoff. Failures with no deliveries for 15 minutes alert (EmporiumNotificationMailUndeliverable).",
        )
    )
    layout.add(
        timeseries(
            "Consumed events per second by type and outcome",
            [(f"sum by (type, outcome) (rate(notification_events_total{{{sel}}}{rate}))", "{{type}} {{outcome}}")],
            "ops",
            "rejected = dead-lettered: that customer got no e-mail (EmporiumNotificationEventsDeadLettered).",
        ),
        width=24,
    )


def dashboard(svc: str, protocols: set[str]) -> dict:
    layout = Layout()
    up = f'up{{job="emporium", namespace="$namespace", app="{svc}"}}'
    layout.row("Availability")
    layout.add(stat("Pods answering", f"sum({up})", thresholds=[(None, "red"), (1, "green")]), width=6, height=4)
    layout.add(stat("Pods scraped", f"count({up})"), width=6, height=4)
    layout.add(
        stat(
            "Restarts (1h)",
            f'sum(increase(kube_pod_container_status_restarts_total{{namespace="$namespace", container="{svc}"}}[1h]))',
            thresholds=[(None, "green"), (1, "orange"), (5, "red")],
        ),
        width=6,
        height=4,
    )
    layout.add(stat("Scrape duration", f"max(scrape_duration_seconds{{job=\"emporium\", namespace=\"$namespace\", app=\"{svc}\"}})", "s"), width=6, height=4)
    for proto in ("http", "grpc"):
        if proto in protocols:
            red_panels(layout, svc, proto)
    sel = f'namespace="$namespace", service="{svc}"'
    if "mail" in protocols:
        mail_panels(layout, svc)
    layout.row("Events")
    layout.add(timeseries("Outbox lag (oldest unpublished event)", [(f"max(emporium_outbox_lag_seconds{{{sel}}})", "lag")], "s", "Alerts above 60s (EmporiumOutboxLagHigh). Empty for services without an outbox."))
    layout.add(timeseries("Consumer lag by consumer", [(f"max by (consumer) (emporium_consumer_lag_messages{{{sel}}})", "{{consumer}}")], "short", "Alerts above 1000 messages (EmporiumConsumerLagHigh)."))
    pod = f'namespace="$namespace", container="{svc}"'
    layout.row("Resources (kubelet / cAdvisor and kube-state-metrics)")
    layout.add(
        timeseries(
            "CPU by pod (cores)",
            [
                (f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{pod}}}[$__rate_interval]))", "{{pod}}"),
                (f'max(kube_pod_container_resource_requests{{{pod}, resource="cpu"}})', "request"),
            ],
        )
    )
    layout.add(
        timeseries(
            "Memory working set by pod",
            [
                (f"sum by (pod) (container_memory_working_set_bytes{{{pod}}})", "{{pod}}"),
                (f'max(kube_pod_container_resource_limits{{{pod}, resource="memory"}})', "limit"),
            ],
            "bytes",
        )
    )
    return {
        "uid": f"emporium-{svc}",
        "title": f"Emporium / {svc} overview",
        "description": f"Availability, traffic, errors, latency, events and resources of the {svc} service.",
        "tags": ["emporium", svc],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "links": [{"type": "dashboards", "title": "Emporium", "tags": ["emporium"], "asDropdown": True, "includeVars": True, "keepTime": True}],
        "annotations": {"list": []},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0},
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": f'label_values(up{{job="emporium", app="{svc}"}}, namespace)', "refId": "namespace"},
                    "definition": f'label_values(up{{job="emporium", app="{svc}"}}, namespace)',
                    "refresh": 2,
                    "current": {},
                    "hide": 0,
                },
            ]
        },
        "panels": [dict(p, id=i + 1) for i, p in enumerate(layout.panels)],
    }


def render_all() -> dict[Path, str]:
    return {HERE / f"{svc}-overview.json": json.dumps(dashboard(svc, protos), indent=2) + "\n" for svc, protos in services().items()}


def main() -> int:
    check = sys.argv[1:] == ["--check"]
    stale = []
    for path, text in render_all().items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parents[2])}")
    if stale:
        print(f"stale dashboards: {', '.join(stale)}; run deploy/observability/grafana/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
