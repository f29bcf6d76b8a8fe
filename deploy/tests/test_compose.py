"""deploy/compose.yaml is a valid Compose file that runs the same images, with the
same configuration keys, as the Kubernetes manifests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1]
COMPOSE = DEPLOY / "compose.yaml"
BASE = DEPLOY / "k8s" / "base"
OUR_IMAGE = re.compile(r"^emporium/(?P<image>[a-z0-9-]+):\$\{EMPORIUM_VERSION:-(?P<default>[^}]+)\}$")
# One-shot services (the Kubernetes Jobs' counterparts): <svc>-migrate, <what>-import;
# and accounts-keys, which readies the volume for accounts' generated signing key.
JOB_NAME = re.compile(r"^[a-z]+-(migrate|import|keys)$")
# Settings only compose uses, and why.
COMPOSE_ONLY = {
    # Compose generates its own signing key; Kubernetes mounts a Secret (SIGNING_KEY_FILE).
    "EMPORIUM_ACCOUNTS__SIGNING_KEY_PATH",
}
# Where each backing store (and the mail server) listens.
STORE_PORTS = {"postgres": 5432, "redis": 6379, "nats": 4222, "mailpit": 1025}


def _interpolate(text: str) -> str:
    """${VAR:-default} -> default, as Compose does with VAR unset."""
    return re.sub(r"\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}", r"\1", text)


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    doc = yaml.safe_load(_interpolate(COMPOSE.read_text()))  # PyYAML resolves the << merge keys
    return {k: v for k, v in doc.items() if not k.startswith("x-")}


def test_compose_file_is_valid_by_the_compose_specification(compose):
    compose_spec = pytest.importorskip("compose_spec", reason="deploy/validate.sh installs compose-spec")
    parsed = compose_spec.PyCompose.from_json(json.dumps(compose))  # unknown keys, bad values: ValueError
    parsed.validate()  # every secret, volume and network a service uses is declared


def test_dependencies_exist_and_wait_for_the_right_condition(compose):
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = cond["condition"]
            if JOB_NAME.match(dep):
                assert condition == "service_completed_successfully", f"{name} must wait for {dep} to finish"
            elif "healthcheck" in services[dep]:
                assert condition == "service_healthy", f"{name} should wait for {dep} to be healthy"


def test_our_images_are_the_built_ones_and_hardened(raw, compose):
    images = {p.parent.name for p in (DEPLOY / "docker").glob("*/Dockerfile")}
    for name, svc in raw["services"].items():
        m = OUR_IMAGE.match(svc["image"])
        if not m:
            assert ":" in svc["image"] and not svc["image"].endswith(":latest"), f"{name}: unpinned image {svc['image']}"
            continue
        assert m["image"] in images, f"{name}: no deploy/docker/{m['image']}/Dockerfile"
        merged = compose["services"][name]
        assert merged["user"] == "65532:65532" and merged["read_only"] is True, name
        assert merged["cap_drop"] == ["ALL"], name
        assert "healthcheck" not in merged, f"{name}: our images have no shell or probe command"
        if JOB_NAME.match(name):
            assert merged["restart"] == "no", name


def test_every_deployment_runs_in_compose_with_the_same_upstreams(compose, overlays):
    dev = overlays["dev"]
    for d in dev.of_kind("Deployment"):
        name = d["metadata"]["name"]
        assert name in compose["services"], f"compose.yaml runs no {name}"
        w = dev.workload(f"Deployment/{name}")
        k8s = {k for k in dev.environment(w, w.containers(include_init=False)[0]) if k.endswith("__URL") or k.endswith("__URL_FILE")}
        ours = {k for k in compose["services"][name].get("environment") or {} if k.endswith("__URL") or k.endswith("__URL_FILE")}
        assert ours == k8s, f"{name}: compose sets {sorted(ours)}, Kubernetes {sorted(k8s)}"


def test_backing_stores_have_healthchecks_with_their_own_tools(compose):
    for name in ("postgres", "nats", "redis"):
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[0] == "CMD", f"{name}: exec-form healthcheck expected"


def test_configuration_keys_match_the_kubernetes_config(compose):
    k8s_keys = set()
    for env in BASE.glob("*/*.env"):
        k8s_keys |= {line.split("=", 1)[0] for line in env.read_text().splitlines() if "=" in line}
    for manifest in BASE.glob("*/*.yaml"):
        k8s_keys |= set(re.findall(r"- name: (EMPORIUM_[A-Z0-9_]+)", manifest.read_text()))
    for name, svc in compose["services"].items():
        for key in svc.get("environment") or {}:
            if key.startswith("EMPORIUM_") and key not in COMPOSE_ONLY:
                assert key in k8s_keys, f"{name}: {key} is set nowhere in the Kubernetes manifests"


def test_urls_point_at_compose_services_on_their_ports(compose):
    services = compose["services"]
    secrets = compose.get("secrets", {})
    for name, svc in services.items():
        env = svc.get("environment") or {}
        urls = [v for k, v in env.items() if k.endswith("__URL")]
        for k, path in env.items():
            if k.endswith("__URL_FILE"):
                secret = Path(path).name
                assert secret in (svc.get("secrets") or []), f"{name}: {k} reads a secret it is not given"
                urls.append((COMPOSE.parent / secrets[secret]["file"]).read_text().strip())
        # A server named by host and port (notification's MAIL__SMTP__HOST/PORT).
        for k, host in env.items():
            if k.endswith("__HOST"):
                port = env.get(k[: -len("HOST")] + "PORT")
                assert port is not None, f"{name}: {k} without its port"
                urls.append(f"tcp://{host}:{port}")
        for url in urls:
            parts = urlsplit(url)
            assert parts.hostname in services, f"{name}: {url} names no compose service"
            target = services[parts.hostname]
            listens = STORE_PORTS.get(parts.hostname)
            for key, value in (target.get("environment") or {}).items():
                if key.endswith("__GRPC_ADDR") or key.endswith("__HTTP_ADDR"):
                    listens = int(str(value).rsplit(":", 1)[1])
            assert parts.port == listens, f"{name}: {url}: {parts.hostname} listens on {listens}"


def test_published_ports_are_bound_to_loopback_only(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is published on every interface"


def test_compose_generates_its_own_signing_key_and_grants_no_admin(compose):
    secrets = compose.get("secrets", {})
    for name, secret in secrets.items():
        assert "k8s" not in secret["file"], f"secret {name} is the Kubernetes overlay's {secret['file']}"
    accounts = compose["services"]["accounts"]["environment"]
    assert "EMPORIUM_ACCOUNTS__SIGNING_KEY_FILE" not in accounts
    key_dir = str(Path(accounts["EMPORIUM_ACCOUNTS__SIGNING_KEY_PATH"]).parent)
    assert any(v.endswith(":" + key_dir) for v in compose["services"]["accounts"]["volumes"]), "the key is kept in a volume"
    assert not any("ADMIN_EMAILS" in k for k in accounts), "nobody is made admin by configuration"
