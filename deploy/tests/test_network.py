"""The NetworkPolicies allow exactly the call graph that the configuration implies.

Calls come from the services' configuration: every EMPORIUM_…__URL value (in a
ConfigMap or env), every EMPORIUM_…__URL_FILE Secret (rendered in dev; the
documented example in prod) and every EMPORIUM_…__HOST with its …__PORT (the
SMTP server) names a host and port. An ExternalName Service is followed to the
in-cluster Service it names (dev: smtp -> mailpit), else the call is external. Each call must be allowed
by an egress rule on the caller and an ingress rule on the callee; each rule
between our pods must be such a call. Beyond that only three platform edges
exist: DNS to kube-dns, Prometheus scraping the admin port, and public clients
reaching the port a NodePort/LoadBalancer Service publishes.
"""

from __future__ import annotations

import ipaddress

from model import Overlay
from services import deployed, rust_config

DNS = "namespace:kubernetes.io/metadata.name=kube-system/pod:k8s-app=kube-dns"
PROMETHEUS = "namespace:kubernetes.io/metadata.name=monitoring/pod:app.kubernetes.io/name=prometheus"
ADMIN_PORT = 9090


def _in_cluster(target: str) -> bool:
    return not target.startswith(("external:", "ipBlock:", "namespace:", "any"))


def _public_ports(overlay: Overlay) -> set[tuple[str, int]]:
    """(workload, container port) that a NodePort or LoadBalancer Service publishes."""
    out = set()
    for svc in overlay.of_kind("Service"):
        if svc["spec"].get("type") not in ("NodePort", "LoadBalancer"):
            continue
        for w in overlay.service_pods(svc):
            for p in svc["spec"]["ports"]:
                out.add((w.id, w.container_port(p.get("targetPort", p["port"]))))
    return out


def _allows(edges, source: str, target: str, port: int) -> bool:
    return any(s in (source, "any") and t in (target, "any") and p in (port, None) for s, t, p in edges)


def test_a_default_deny_policy_isolates_every_pod(overlay: Overlay):
    deny = [
        np
        for np in overlay.of_kind("NetworkPolicy")
        if np["spec"].get("podSelector") == {}
        and set(np["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not np["spec"].get("ingress")
        and not np["spec"].get("egress")
    ]
    assert deny, "no default-deny NetworkPolicy (empty podSelector, Ingress+Egress, no rules)"
    for w in overlay.workloads:
        assert overlay.isolated(w, "Ingress") and overlay.isolated(w, "Egress"), w.id


def test_the_configuration_implies_the_call_graph_of_the_code(overlay: Overlay):
    """A guard on the derivation itself, so the tests below cannot pass vacuously:
    the gRPC edges derived from the rendered configuration are exactly the
    `Upstream` fields of each service's config struct, and every service with a
    database (and each of its Jobs) connects to it."""
    calls = {(c.source, c.target, c.port) for c in overlay.calls()}
    grpc = {(s, t, p) for s, t, p in calls if s.startswith("Deployment/") and t.startswith("Deployment/")}
    expected = {
        (f"Deployment/{svc}", f"Deployment/{upstream}", deployed()[upstream].grpc_port)
        for svc in deployed()
        for upstream in rust_config(svc).upstreams()
    }
    assert grpc == expected, f"configured {sorted(grpc - expected)} beyond the code; missing {sorted(expected - grpc)}"
    assert ("Deployment/gateway", "Deployment/catalog", 50051) in grpc

    postgres, redis = 5432, 6379
    database_clients = {source for source, _, port in calls if port == postgres}
    want = {f"Deployment/{svc}" for svc, s in deployed().items() if s.has_database}
    want |= {w.id for w in overlay.workloads if w.kind in ("Job", "CronJob") and w.labels.get("emporium.io/postgres-client") == "true"}
    assert want == database_clients, f"database clients {sorted(database_clients)}, want {sorted(want)}"
    assert {"Deployment/catalog", "Job/catalog-migrate", "Job/catalog-import", "Deployment/checkout", "Job/checkout-migrate"} <= database_clients
    # The cart's store, and the gateway's rate limits shared by its replicas.
    assert {source for source, _, port in calls if port == redis} == {"Deployment/cart", "Deployment/gateway"}, calls
    nats = 4222
    want = {f"Deployment/{svc}" for svc in deployed() if rust_config(svc).has_events()}
    assert {source for source, _, port in calls if port == nats} == want, f"event bus clients: want {sorted(want)}"
    smtp = {c.source for c in overlay.calls() if c.via.endswith("__MAIL__SMTP__HOST")}
    want = {f"Deployment/{svc}" for svc in deployed() if rust_config(svc).has_smtp()}
    assert smtp == want, f"SMTP clients {sorted(smtp)}, want {sorted(want)}"
    assert "Deployment/notification" in smtp


def test_the_payment_provider_has_a_name_but_no_edge_until_payment_calls_it(overlay: Overlay):
    """The ExternalName payment-provider is the documented external edge. The
    simulator calls no processor (no URL setting exists), so no pod may leave the
    cluster for it: an egress rule would be an edge without a call."""
    svc = overlay.get("Service", "payment-provider")
    assert svc is not None and svc["spec"]["type"] == "ExternalName"
    assert not [c for c in overlay.calls() if c.target == f"external:{svc['spec']['externalName']}"], "a call to the payment provider now exists: add its egress rule"
    assert rust_config("payment").upstreams() == [], "payment calls an upstream now: configure it and its NetworkPolicy edge"


def test_every_call_has_an_egress_and_an_ingress_edge(overlay: Overlay):
    egress, ingress = overlay.policy_edges("Egress"), overlay.policy_edges("Ingress")
    problems = []
    for call in sorted(overlay.calls(), key=str):
        if _in_cluster(call.target):
            if not _allows(egress, call.source, call.target, call.port):
                problems.append(f"{call.source} -> {call.target}:{call.port} ({call.via}): no egress rule")
            if not _allows(ingress, call.source, call.target, call.port):
                problems.append(f"{call.source} -> {call.target}:{call.port} ({call.via}): no ingress rule")
        else:
            blocks = [t for s, t, p in egress if s == call.source and t.startswith("ipBlock:") and p in (call.port, None)]
            if not blocks:
                problems.append(f"{call.source} -> {call.target}:{call.port} ({call.via}): no ipBlock egress rule")
    assert not problems, "\n".join(problems)


def test_every_edge_between_our_pods_is_a_call(overlay: Overlay):
    calls = {(c.source, c.target, c.port) for c in overlay.calls()}
    problems = []
    for direction in ("Egress", "Ingress"):
        for source, target, port in sorted(overlay.policy_edges(direction), key=str):
            if _in_cluster(source) and _in_cluster(target) and (source, target, port) not in calls:
                problems.append(f"{direction} edge {source} -> {target}:{port or 'all ports'} matches no configured call")
    assert not problems, "\n".join(problems)


def test_edges_leaving_the_namespace_are_dns_or_configured_external_calls(overlay: Overlay):
    external = {(c.source, c.port) for c in overlay.calls() if not _in_cluster(c.target)}
    problems = []
    for source, target, port in sorted(overlay.policy_edges("Egress"), key=str):
        if target == "any":
            problems.append(f"{source}: egress to anywhere")
        elif target.startswith("namespace:") and not (target == DNS and port == 53):
            problems.append(f"{source}: egress to {target}:{port} is not DNS")
        elif target.startswith("ipBlock:"):
            net = ipaddress.ip_network(target.removeprefix("ipBlock:"))
            if net.prefixlen == 0:
                problems.append(f"{source}: egress to all addresses ({net})")
            if (source, port) not in external:
                problems.append(f"{source}: egress to {net}:{port} matches no configured external call")
    assert not problems, "\n".join(problems)


def test_every_pod_may_resolve_names(overlay: Overlay):
    egress = overlay.policy_edges("Egress")
    for w in overlay.workloads:
        assert (w.id, DNS, 53) in egress, f"{w.id}: no DNS egress to kube-dns"


def test_ingress_from_outside_is_prometheus_on_admin_or_public_clients_on_published_ports(overlay: Overlay):
    public = _public_ports(overlay)
    problems = []
    for source, target, port in sorted(overlay.policy_edges("Ingress"), key=str):
        if _in_cluster(source):
            continue
        w = overlay.workload(target)
        if source == PROMETHEUS:
            if port != ADMIN_PORT or w.container_port("admin") != ADMIN_PORT:
                problems.append(f"{target}: Prometheus may reach port {port}, which is not its admin port")
        elif source == "any":
            if (target, port) not in public:
                problems.append(f"{target}: open ingress on {port or 'all ports'}, which no NodePort/LoadBalancer Service publishes")
        else:
            problems.append(f"{target}: ingress from {source}:{port} is no call and no platform edge")
    for w in overlay.workloads:
        if w.container_port("admin") == ADMIN_PORT and (PROMETHEUS, w.id, ADMIN_PORT) not in overlay.policy_edges("Ingress"):
            problems.append(f"{w.id}: Prometheus cannot scrape its admin port")
    for target, port in public:
        if ("any", target, port) not in overlay.policy_edges("Ingress"):
            problems.append(f"{target}: published port {port} is not open to clients")
    assert not problems, "\n".join(problems)
