"""Custom resources, the service mesh overlay and the public entry.

Custom resources (Linkerd policy, Gateway API) are validated against the real
CRD schemas in ../shared/crds/ - strictly: a field the schema does not name is
an error, as `kubectl apply --validate=strict` would say. (CEL rules in the
schemas, x-kubernetes-validations, are not evaluated.)

The mesh overlay's authorization and the NetworkPolicies are two encodings of
one call graph: the one the services' configuration implies
(Overlay.calls(), from every EMPORIUM_<CALLER>__<UPSTREAM>__URL). Both are
checked against it, and against each other.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import load_overlay
from model import Overlay

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO.parent / "shared" / "crds"
CORE_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"}


@cache
def crd_schemas() -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> openAPIV3Schema, for every CRD in shared/crds."""
    assert CRDS.is_dir(), f"{CRDS}: the CRDs to validate custom resources against are missing"
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    out[(spec["group"], version["name"], spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return out


def strict(schema: dict) -> dict:
    """The schema with unknown fields refused wherever it lists fields and
    does not say to keep unknown ones (Kubernetes' structural pruning rule)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # The API server checks metadata itself; the CRD schemas say only "object".
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    schema["properties"].setdefault("apiVersion", {"type": "string"})
    schema["properties"].setdefault("kind", {"type": "string"})
    return schema


def group_version(obj: dict) -> tuple[str, str]:
    api = obj["apiVersion"]
    return tuple(api.split("/", 1)) if "/" in api else ("", api)


def custom_resources(overlay: Overlay) -> list[dict]:
    return [o for o in overlay.objects if group_version(o)[0] not in CORE_GROUPS]


def test_every_custom_resource_is_valid_against_its_crd_strictly(overlay: Overlay):
    schemas = crd_schemas()
    problems = []
    for obj in custom_resources(overlay):
        group, version = group_version(obj)
        key = (group, version, obj["kind"])
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if key not in schemas:
            problems.append(f"{name}: no CRD in shared/crds serves {group}/{version} {obj['kind']}")
            continue
        validator = jsonschema.Draft7Validator(strict(schemas[key]))
        problems += [f"{name}: {'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in validator.iter_errors(obj)]
    assert not problems, "\n".join(problems)


def test_the_strict_check_refuses_an_unknown_field():
    """The check above can fail: a Server with a misspelt field is refused."""
    server = {
        "apiVersion": "policy.linkerd.io/v1beta3",
        "kind": "Server",
        "metadata": {"name": "x"},
        "spec": {"podSelector": {"matchLabels": {"a": "b"}}, "port": "grpc", "proxyProtocl": "gRPC"},
    }
    schema = strict(crd_schemas()[("policy.linkerd.io", "v1beta3", "Server")])
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(server))
    assert any("proxyProtocl" in e.message for e in errors), errors


# -- the mesh overlay ------------------------------------------------------------


@pytest.fixture(scope="module")
def mesh() -> Overlay:
    return load_overlay("mesh")


def service_account(overlay: Overlay, workload_id: str) -> str:
    w = overlay.workload(workload_id)
    return w.pod["spec"].get("serviceAccountName", "default")


def grpc_ports(overlay: Overlay) -> set[tuple[str, int]]:
    """(workload, container port) of every port named grpc."""
    out = set()
    for w in overlay.workloads:
        for c in w.containers(include_init=False):
            for p in c.get("ports", []):
                if p.get("name") == "grpc":
                    out.add((w.id, p["containerPort"]))
    return out


def authorized(overlay: Overlay) -> set[tuple[str, str, int]]:
    """(caller ServiceAccount, workload, port) the mesh's policies admit."""
    out = set()
    for policy in overlay.of_kind("AuthorizationPolicy"):
        target = policy["spec"]["targetRef"]
        assert target["kind"] == "Server", f"{policy['metadata']['name']} targets {target}"
        server = overlay.get("Server", target["name"])
        assert server, f"{policy['metadata']['name']}: no Server {target['name']}"
        identities = set()
        for ref in policy["spec"]["requiredAuthenticationRefs"]:
            assert ref["kind"] == "MeshTLSAuthentication", f"{policy['metadata']['name']}: {ref}"
            authn = overlay.get("MeshTLSAuthentication", ref["name"])
            assert authn, f"no MeshTLSAuthentication {ref['name']}"
            for identity in authn["spec"]["identityRefs"]:
                assert identity["kind"] == "ServiceAccount", identity
                identities.add(identity["name"])
        for w in overlay.pods_selected(server["spec"]["podSelector"]):
            port = w.container_port(server["spec"]["port"])
            assert port is not None, f"Server {server['metadata']['name']}: {w.id} has no port {server['spec']['port']}"
            out |= {(sa, w.id, port) for sa in identities}
    return out


def test_every_pod_of_the_mesh_gets_a_proxy(mesh: Overlay):
    namespace = mesh.get("Namespace", "emporium")
    assert namespace["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"
    opted_out = [w.id for w in mesh.workloads if (w.pod["metadata"].get("annotations") or {}).get("linkerd.io/inject") == "disabled"]
    assert not opted_out


def test_each_grpc_port_admits_exactly_the_callers_the_configuration_implies(mesh: Overlay):
    implied = {(service_account(mesh, c.source), c.target, c.port) for c in mesh.calls() if (c.target, c.port) in grpc_ports(mesh)}
    assert implied, "the configuration implies gRPC calls"
    assert authorized(mesh) == implied


def test_every_grpc_port_has_a_server(mesh: Overlay):
    served = {(w.id, w.container_port(s["spec"]["port"])) for s in mesh.of_kind("Server") for w in mesh.pods_selected(s["spec"]["podSelector"])}
    assert grpc_ports(mesh) <= served, sorted(grpc_ports(mesh) - served)


def test_the_mesh_and_the_network_policies_allow_the_same_grpc_edges(mesh: Overlay):
    ports = grpc_ports(mesh)
    # Deployments only: a service's migration Job runs under the same
    # ServiceAccount, but no NetworkPolicy lets it reach a gRPC port.
    by_account: dict[str, set[str]] = {}
    for w in mesh.workloads:
        if w.kind != "Deployment":
            continue
        by_account.setdefault(service_account(mesh, w.id), set()).add(w.id)
    mesh_edges = {(src, target, port) for sa, target, port in authorized(mesh) for src in by_account.get(sa, set())}
    network_edges = {(src, target, port) for src, target, port in mesh.policy_edges("Ingress") if (target, port) in ports}
    assert mesh_edges == network_edges


def test_in_the_mesh_the_kubelet_probes_only_the_admin_port(mesh: Overlay):
    for w in mesh.workloads:
        if w.kind != "Deployment":
            continue
        for c in w.containers(include_init=False):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                spec = c.get(probe)
                if spec is None:
                    continue
                assert "grpc" not in spec, f"{w.id} {probe} probes a gRPC port the mesh locks"
                port = (spec.get("httpGet") or {}).get("port")
                assert port in ("admin", 9090), f"{w.id} {probe}: {spec}"


# -- the public entry (prod and mesh) ------------------------------------------


@pytest.mark.parametrize("name", ["prod", "mesh"])
def test_the_public_entry_serves_https_redirects_http_and_routes_api_to_the_gateway(name: str):
    overlay = load_overlay(name)
    (gateway,) = overlay.of_kind("Gateway")
    listeners = {listener["name"]: listener for listener in gateway["spec"]["listeners"]}
    https, http = listeners["https"], listeners["http"]
    assert https["protocol"] == "HTTPS" and https["port"] == 443
    assert https["tls"]["mode"] == "Terminate"
    assert [r["name"] for r in https["tls"]["certificateRefs"]] == ["emporium-public-tls"]
    assert http["protocol"] == "HTTP" and http["port"] == 80
    routes = overlay.of_kind("HTTPRoute")
    on = lambda section: [r for r in routes if any(p.get("sectionName") == section for p in r["spec"]["parentRefs"])]  # noqa: E731
    for route in on("http"):
        for rule in route["spec"]["rules"]:
            assert "backendRefs" not in rule, f"{route['metadata']['name']}: plain HTTP only redirects"
            (redirect,) = rule["filters"]
            assert redirect["requestRedirect"]["scheme"] == "https"
    api = [rule for route in on("https") for rule in route["spec"]["rules"] if any(m["path"]["value"] == "/api" for m in rule.get("matches", []))]
    assert len(api) == 1
    (backend,) = api[0]["backendRefs"]
    service = overlay.get("Service", backend["name"])
    assert service, backend
    port = next(p for p in service["spec"]["ports"] if p["port"] == backend["port"])
    assert [w.app for w in overlay.service_pods(service)] == ["gateway"]
    assert port["targetPort"] == "http", "the API, never the admin port"
