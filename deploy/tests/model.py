"""A small model of a rendered overlay: workloads, their pods' labels and
environment, Services, NetworkPolicies, and the call graph that the services'
configuration implies.

The policy tests ask questions of this model instead of walking YAML
themselves, so each test reads as the rule it checks.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

NAMESPACE = "emporium"
CLUSTER_DOMAIN = "cluster.local"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 443, "postgres": 5432, "postgresql": 5432, "nats": 4222, "redis": 6379, "rediss": 6379}
URL_VAR = re.compile(r"^EMPORIUM_[A-Z0-9_]+__URL$")
URL_FILE_VAR = re.compile(r"^EMPORIUM_[A-Z0-9_]+__URL_FILE$")
# A server named by host and port rather than a URL (notification's
# MAIL__SMTP__HOST / MAIL__SMTP__PORT): the pair is one call.
HOST_VAR = re.compile(r"^(EMPORIUM_[A-Z0-9_]+__)HOST$")


def load_yaml_documents(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def parse_duration(text: str) -> float:
    """Seconds in a duration string as the services read them: "250ms", "2s", "1m", "1h"."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """Kubernetes LabelSelector semantics; an empty selector matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass
class Workload:
    kind: str
    name: str
    obj: dict
    pod: dict  # the pod template: {"metadata": …, "spec": …}

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def labels(self) -> dict:
        return self.pod.get("metadata", {}).get("labels", {}) or {}

    @property
    def spec(self) -> dict:
        return self.pod["spec"]

    @property
    def app(self) -> str:
        return self.labels.get("app.kubernetes.io/name", self.name)

    @property
    def long_running(self) -> bool:
        return self.kind in LONG_RUNNING_KINDS

    def containers(self, include_init: bool = True) -> list[dict]:
        out = list(self.spec.get("containers", []))
        if include_init:
            out += self.spec.get("initContainers", []) or []
        return out

    def container_port(self, port: int | str, container: dict | None = None) -> int | None:
        """The container port number that `port` (a name or number) means in this pod."""
        for c in [container] if container else self.containers(include_init=False):
            for p in c.get("ports", []) or []:
                if port == p.get("name") or port == p["containerPort"]:
                    return p["containerPort"]
        return None

    def volume(self, name: str) -> dict | None:
        return next((v for v in self.spec.get("volumes", []) or [] if v["name"] == name), None)


@dataclass(frozen=True)
class Call:
    """One edge of the call graph: `source` connects to `target` on `port`.
    `target` is a workload id, or "external:<host>" outside the cluster."""

    source: str
    target: str
    port: int
    via: str  # the configuration that implies it, for messages


@dataclass
class Overlay:
    name: str
    objects: list[dict]
    out_of_band: dict = field(default_factory=dict)  # secret name -> {key: {"example": …}}

    # -- lookups -------------------------------------------------------------
    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict | None:
        return next((o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name), None)

    @property
    def workloads(self) -> list[Workload]:
        out = []
        for o in self.objects:
            if o["kind"] not in WORKLOAD_KINDS:
                continue
            pod = o["spec"]["jobTemplate"]["spec"]["template"] if o["kind"] == "CronJob" else o["spec"]["template"]
            out.append(Workload(o["kind"], o["metadata"]["name"], o, pod))
        return out

    def workload(self, wid: str) -> Workload:
        return next(w for w in self.workloads if w.id == wid)

    def pods_selected(self, selector: dict | None) -> list[Workload]:
        """Pods a LabelSelector (matchLabels/matchExpressions) selects."""
        return [w for w in self.workloads if selector_matches(selector, w.labels)]

    def service_pods(self, svc: dict) -> list[Workload]:
        """Pods a Service's (plain map) selector selects; none without a selector."""
        selector = svc["spec"].get("selector")
        return self.pods_selected({"matchLabels": selector}) if selector else []

    def configmap_data(self, name: str) -> dict | None:
        cm = self.get("ConfigMap", name)
        return None if cm is None else {**(cm.get("data") or {}), **(cm.get("binaryData") or {})}

    def secret_data(self, name: str) -> dict | None:
        """Decoded data of a rendered Secret; for an out-of-band one, its example values."""
        s = self.get("Secret", name)
        if s is not None:
            data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
            data.update(s.get("stringData") or {})
            return data
        if name in self.out_of_band:
            return {k: v.get("example", "") for k, v in self.out_of_band[name].items()}
        return None

    # -- configuration -------------------------------------------------------
    def environment(self, w: Workload, c: dict) -> dict[str, str]:
        """The environment a container starts with (ConfigMap envFrom, then env)."""
        env: dict[str, str] = {}
        for src in c.get("envFrom", []) or []:
            if "configMapRef" in src:
                data = self.configmap_data(src["configMapRef"]["name"]) or {}
                env.update({src.get("prefix", "") + k: v for k, v in data.items()})
        for e in c.get("env", []) or []:
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "configMapKeyRef" in (e.get("valueFrom") or {}):
                ref = e["valueFrom"]["configMapKeyRef"]
                env[e["name"]] = (self.configmap_data(ref["name"]) or {}).get(ref["key"], "")
        return env

    def mounted_file(self, w: Workload, c: dict, path: str) -> tuple[str, str, str] | None:
        """(kind, object name, key) of the ConfigMap/Secret key mounted at `path`."""
        for m in c.get("volumeMounts", []) or []:
            mount = m["mountPath"].rstrip("/")
            if not path.startswith(mount + "/"):
                continue
            rel = path[len(mount) + 1 :]
            vol = w.volume(m["name"]) or {}
            for kind, field_, name_field in (("Secret", "secret", "secretName"), ("ConfigMap", "configMap", "name")):
                if field_ in vol:
                    src = vol[field_]
                    key = rel
                    for item in src.get("items", []) or []:
                        if item["path"] == rel:
                            key = item["key"]
                    return kind, src[name_field], key
        return None

    def read_file_value(self, w: Workload, c: dict, path: str) -> str | None:
        ref = self.mounted_file(w, c, path)
        if ref is None:
            return None
        kind, name, key = ref
        data = self.secret_data(name) if kind == "Secret" else self.configmap_data(name)
        return None if data is None else data.get(key)

    def urls(self, w: Workload) -> list[tuple[str, str]]:
        """(variable, URL) for every EMPORIUM_…__URL[_FILE] a workload's containers get,
        and for every EMPORIUM_…__HOST with its …__PORT (as tcp://host:port)."""
        out = []
        for c in w.containers():
            env = self.environment(w, c)
            for var, value in env.items():
                if URL_VAR.match(var):
                    out.append((var, value))
                elif m := HOST_VAR.match(var):
                    port = env.get(m[1] + "PORT")
                    if port is None:
                        raise ValueError(f"{w.id}: {var} without {m[1]}PORT: set the port explicitly")
                    host = f"[{value}]" if ":" in value else value
                    out.append((var, f"tcp://{host}:{port}"))
                elif URL_FILE_VAR.match(var):
                    url = self.read_file_value(w, c, value)
                    if url is None:
                        raise LookupError(f"{w.id}: {var}={value} is not a mounted Secret/ConfigMap key")
                    out.append((var, url))
        return out

    # -- services and calls ----------------------------------------------------
    def service_for_host(self, host: str) -> dict | None:
        for svc in self.of_kind("Service"):
            name = svc["metadata"]["name"]
            ns = svc["metadata"].get("namespace", NAMESPACE)
            names = {name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{CLUSTER_DOMAIN}"}
            if host.rstrip(".") in names:
                return svc
        return None

    def calls(self) -> set[Call]:
        calls = set()
        for w in self.workloads:
            for var, url in self.urls(w):
                parts = urlsplit(url)
                host = parts.hostname or ""
                port = parts.port or DEFAULT_PORTS.get(parts.scheme)
                if port is None:
                    raise ValueError(f"{w.id}: {var}: no port in {url!r}")
                svc = self.service_for_host(host)
                if svc is None:
                    if host.endswith(f".svc.{CLUSTER_DOMAIN}") or "." not in host:
                        raise LookupError(f"{w.id}: {var} names {host!r}, which is no Service in the render")
                    calls.add(Call(w.id, f"external:{host}", port, var))
                    continue
                spec = svc["spec"]
                # An ExternalName is a CNAME: to an in-cluster Service (dev's
                # smtp -> mailpit) the call goes on to that Service's pods.
                seen = {svc["metadata"]["name"]}
                while spec.get("type") == "ExternalName" and (inner := self.service_for_host(spec["externalName"])) is not None:
                    if inner["metadata"]["name"] in seen:
                        raise LookupError(f"{w.id}: {var}: ExternalName loop through {sorted(seen)}")
                    seen.add(inner["metadata"]["name"])
                    svc, spec = inner, inner["spec"]
                if spec.get("type") == "ExternalName":
                    calls.add(Call(w.id, f"external:{spec['externalName']}", port, var))
                    continue
                sport = next((p for p in spec.get("ports", []) if p["port"] == port), None)
                if sport is None:
                    raise LookupError(f"{w.id}: {var}: Service {svc['metadata']['name']} has no port {port}")
                for target in self.service_pods(svc):
                    # A headless Service hands out pod addresses: the client uses its URL port.
                    tport = port if spec.get("clusterIP") == "None" else sport.get("targetPort", port)
                    number = target.container_port(tport)
                    if number is None:
                        raise LookupError(f"{w.id}: {var}: {target.id} has no container port {tport}")
                    calls.add(Call(w.id, target.id, number, var))
        return calls

    # -- network policies ------------------------------------------------------
    def policy_edges(self, direction: str) -> set[tuple[str, str, int | None]]:
        """Edges the NetworkPolicies allow, as (source, target, port) for direction
        "Egress" or "Ingress". Peers outside the namespace appear as
        "namespace:<k=v,…>/pod:<k=v,…>", ipBlocks as "ipBlock:<cidr>", and an
        absent peer list as "any". port None means every port."""
        edges = set()
        for np in self.of_kind("NetworkPolicy"):
            spec = np["spec"]
            if direction not in spec.get("policyTypes", ["Ingress"]):
                continue
            selected = [w.id for w in self.pods_selected(spec.get("podSelector"))]
            key = "egress" if direction == "Egress" else "ingress"
            peer_key = "to" if direction == "Egress" else "from"
            for rule in spec.get(key, []) or []:
                ports = [p.get("port") for p in rule.get("ports", []) or []] or [None]
                peers: list[str] = []
                for peer in rule.get(peer_key, []) or []:
                    if "ipBlock" in peer:
                        peers.append(f"ipBlock:{peer['ipBlock']['cidr']}")
                    elif "namespaceSelector" in peer:
                        peers.append(f"namespace:{_selector_text(peer['namespaceSelector'])}/pod:{_selector_text(peer.get('podSelector'))}")
                    else:
                        peers += [w.id for w in self.pods_selected(peer.get("podSelector"))]
                if not rule.get(peer_key):
                    peers = ["any"]
                for me in selected:
                    for other in peers:
                        for port in ports:
                            edges.add((me, other, port) if direction == "Egress" else (other, me, port))
        return edges

    def isolated(self, w: Workload, direction: str) -> bool:
        return any(
            direction in np["spec"].get("policyTypes", ["Ingress"]) and selector_matches(np["spec"].get("podSelector"), w.labels)
            for np in self.of_kind("NetworkPolicy")
        )


def _selector_text(selector: dict | None) -> str:
    """A stable text form of a label selector, e.g. "k8s-app=kube-dns" ("*" if empty)."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    parts += [f"{e['key']} {e['operator']} {sorted(e.get('values') or [])}" for e in selector.get("matchExpressions") or []]
    return ",".join(parts) or "*"
