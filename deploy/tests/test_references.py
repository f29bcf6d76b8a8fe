"""Every name a manifest uses resolves in the same render: Services select pods
that exist on ports they declare, and every ConfigMap, Secret and key a pod
reads is there (or, in prod, is listed as created out-of-band). No secret
material sits in a ConfigMap or a literal env value."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from model import URL_FILE_VAR, Overlay
from services import deployed

OVERLAYS_DIR = Path(__file__).resolve().parents[1] / "k8s" / "overlays"
SECRET_WORDS = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|API_KEY|SIGNING_KEY)$")
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]+@")


def test_every_service_selects_pods_on_ports_they_declare(overlay: Overlay):
    problems = []
    for svc in overlay.of_kind("Service"):
        name, spec = svc["metadata"]["name"], svc["spec"]
        if spec.get("type") == "ExternalName":
            continue
        pods = overlay.service_pods(svc)
        if not spec.get("selector") or not pods:
            problems.append(f"Service {name}: selects no pod in the render")
        for pod in pods:
            for port in spec.get("ports", []):
                target = port.get("targetPort", port["port"])
                if pod.container_port(target) is None:
                    problems.append(f"Service {name}: {pod.id} has no container port {target}")
    assert not problems, "\n".join(problems)


def test_services_are_dual_stack(overlay: Overlay):
    for svc in overlay.of_kind("Service"):
        spec = svc["spec"]
        if spec.get("type") == "ExternalName":
            # The API rejects ipFamilyPolicy on ExternalName Services.
            assert "ipFamilyPolicy" not in spec, svc["metadata"]["name"]
        else:
            assert spec.get("ipFamilyPolicy") == "PreferDualStack", f"Service {svc['metadata']['name']} is not PreferDualStack"


def test_service_kinds_for_discovery(overlays):
    for name, ov in overlays.items():
        for svc in deployed().values():
            if svc.grpc_port:
                grpc = ov.get("Service", f"{svc.name}-grpc")
                assert grpc is not None and grpc["spec"].get("clusterIP") == "None", f"{svc.name}-grpc must be headless"
        for external in ("payment-provider", "smtp"):
            ext = ov.get("Service", external)
            assert ext is not None and ext["spec"]["type"] == "ExternalName", f"{name}: {external} must be an ExternalName Service"
        public = ov.get("Service", "gateway-public")
        want = {"dev": "NodePort", "prod": "LoadBalancer"}.get(name)
        if want:
            assert public["spec"]["type"] == want, f"{name}: gateway-public is {public['spec']['type']}, want {want}"
        assert [p["targetPort"] for p in public["spec"]["ports"]] == ["http"], "the public Service exposes only the API port"


def _references(overlay: Overlay):
    """(where, kind, name, key or None, optional) for every ConfigMap/Secret a pod uses."""
    for w in overlay.workloads:
        for c in w.containers():
            for src in c.get("envFrom", []) or []:
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if field in src:
                        yield w.id, kind, src[field]["name"], None, src[field].get("optional", False)
            for e in c.get("env", []) or []:
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    ref = (e.get("valueFrom") or {}).get(field)
                    if ref:
                        yield w.id, kind, ref["name"], ref["key"], ref.get("optional", False)
        for v in w.spec.get("volumes", []) or []:
            sources = [v] + [s for s in (v.get("projected") or {}).get("sources", [])]
            for src in sources:
                for kind, field, name_field in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
                    if field in src:
                        ref = src[field]
                        keys = [i["key"] for i in ref.get("items", []) or []] or [None]
                        for key in keys:
                            yield w.id, kind, ref[name_field], key, ref.get("optional", False)


def test_every_referenced_configmap_secret_and_key_exists(overlay: Overlay):
    problems = []
    for where, kind, name, key, optional in _references(overlay):
        data = overlay.configmap_data(name) if kind == "ConfigMap" else overlay.secret_data(name)
        if data is None:
            if not optional:
                problems.append(f"{where}: {kind} {name} is neither rendered nor listed out-of-band")
        elif key is not None and key not in data:
            problems.append(f"{where}: {kind} {name} has no key {key}")
    assert not problems, "\n".join(problems)


def test_file_variables_point_at_mounted_keys(overlay: Overlay):
    problems = []
    for w in overlay.workloads:
        for c in w.containers():
            for var, path in overlay.environment(w, c).items():
                if not var.endswith("_FILE"):
                    continue
                ref = overlay.mounted_file(w, c, path)
                if ref is None:
                    problems.append(f"{w.id}/{c['name']}: {var}={path} is not inside a ConfigMap/Secret mount")
                    continue
                kind, name, key = ref
                data = overlay.secret_data(name) if kind == "Secret" else overlay.configmap_data(name)
                if data is not None and key not in data:
                    problems.append(f"{w.id}/{c['name']}: {var}: {kind} {name} has no key {key}")
                if URL_FILE_VAR.match(var) and kind != "Secret":
                    problems.append(f"{w.id}/{c['name']}: {var} must come from a Secret")
    assert not problems, "\n".join(problems)


def test_no_secret_in_a_configmap_or_a_literal_env_value(overlay: Overlay):
    problems = []
    for cm in overlay.of_kind("ConfigMap"):
        for key, value in (cm.get("data") or {}).items():
            if SECRET_WORDS.search(key.upper()) or CREDENTIALS_IN_URL.search(str(value)):
                problems.append(f"ConfigMap {cm['metadata']['name']}: {key} looks like a secret")
    for w in overlay.workloads:
        for c in w.containers():
            for e in c.get("env", []) or []:
                if "value" in e and (SECRET_WORDS.search(e["name"]) or CREDENTIALS_IN_URL.search(e["value"])):
                    problems.append(f"{w.id}/{c['name']}: env {e['name']} carries a secret literally; use a Secret file")
    assert not problems, "\n".join(problems)


def test_prod_out_of_band_secrets_match_what_prod_mounts_and_dev_generates(overlays):
    prod, dev = overlays["prod"], overlays["dev"]
    doc = yaml.safe_load((OVERLAYS_DIR / "prod" / "secrets.required.yaml").read_text())
    listed = {s["name"]: set(s["keys"]) for s in doc["secrets"]}
    reserved = {s["name"]: set(s["keys"]) for s in doc.get("reserved", [])}
    assert not prod.of_kind("Secret"), "prod must not render Secrets: they are created out-of-band"

    used: dict[str, set] = {}
    for _, kind, name, key, _ in _references(prod):
        if kind == "Secret":
            used.setdefault(name, set())
            if key:
                used[name].add(key)
    for w in prod.workloads:
        for c in w.containers():
            for path in overlay_file_paths(prod, w, c):
                ref = prod.mounted_file(w, c, path)
                if ref and ref[0] == "Secret":
                    used.setdefault(ref[1], set()).add(ref[2])
    assert set(used) == set(listed), f"prod mounts {sorted(used)}, secrets.required.yaml lists {sorted(listed)}"
    for name, keys in used.items():
        assert keys <= listed[name], f"{name}: prod reads keys {sorted(keys)}, listed {sorted(listed[name])}"

    generated = {re.sub(r"-[a-z0-9]{10}$", "", s["metadata"]["name"]): s for s in dev.of_kind("Secret")}
    for name, keys in {**listed, **reserved}.items():
        secret = generated.get(name)
        assert secret is not None, f"dev generates no Secret {name}"
        assert keys == set(secret.get("data", {})), f"dev Secret {name} has keys {sorted(secret.get('data', {}))}, prod lists {sorted(keys)}"


def overlay_file_paths(overlay: Overlay, w, c):
    return [v for k, v in overlay.environment(w, c).items() if k.endswith("_FILE")]
