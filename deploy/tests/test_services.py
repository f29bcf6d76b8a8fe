"""Every service is deployed the same way, and all of them are deployed.

The services are the launcher's (`emporium serve <service>`); each has a folder
deploy/k8s/base/<svc>/ with the same set of files, an image, a Compose service,
a dashboard, and the same shape once rendered in every overlay: probes on the
right ports, a headless Service per gRPC server that its callers use, and a
database (Secret, migrations Job, init script) when it has one.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import yaml

from model import Overlay
from services import BASE, REPO, deployed, launcher_services, rust_config

DEPLOY = REPO / "deploy"
# Services the launcher already knows whose deployment is not written yet, and
# why. An entry leaves this list in the change that adds the service's folder
# (test_pending_services_are_not_deployed_yet fails until it does).
NOT_YET_DEPLOYED: dict[str, str] = {}
SERVICES = sorted((set(launcher_services()) | set(deployed())) - set(NOT_YET_DEPLOYED))
COMMON_FILES = {"kustomization.yaml", "config.env", "serviceaccount.yaml", "deployment.yaml", "service.yaml", "poddisruptionbudget.yaml", "horizontalpodautoscaler.yaml", "networkpolicy.yaml"}
DEV_SECRETS = DEPLOY / "k8s" / "overlays" / "dev" / "secrets"
CREATE_ROLE = re.compile(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']+)';")
CREATE_DB = re.compile(r"CREATE DATABASE (\w+) OWNER (\w+);")

per_service = pytest.mark.parametrize("svc", SERVICES)


def _service(svc: str):
    s = deployed().get(svc)
    assert s is not None, f"{svc}: no deploy/k8s/base/{svc}/config.env with EMPORIUM_{svc.upper()}__ADMIN_ADDR"
    return s


@per_service
def test_every_service_has_a_complete_base_folder(svc):
    s = _service(svc)
    files = {p.name for p in s.folder.iterdir()}
    missing = COMMON_FILES - files
    if s.grpc_port:
        missing |= {"service-grpc.yaml"} - files
    if rust_config(svc).has_database() and not rust_config(svc).has_store_choice():
        missing |= {"database.env", "job-migrate.yaml"} - files
    assert not missing, f"deploy/k8s/base/{svc}/ lacks {sorted(missing)}"
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    assert svc in listed, f"deploy/k8s/base/kustomization.yaml does not list {svc}"
    own = yaml.safe_load((s.folder / "kustomization.yaml").read_text())
    unlisted = {p.name for p in s.folder.glob("*.yaml") if p.name != "kustomization.yaml"} - set(own["resources"])
    assert not unlisted, f"{svc}/kustomization.yaml does not list {sorted(unlisted)}"


@per_service
def test_every_service_has_an_image_a_compose_service_and_a_dashboard(svc):
    dockerfile = DEPLOY / "docker" / svc / "Dockerfile"
    assert dockerfile.exists(), f"no deploy/docker/{svc}/Dockerfile"
    text = dockerfile.read_text()
    assert f"-p emporium-{svc} " in text, f"{svc}: the Dockerfile does not build emporium-{svc}"
    assert f'ENTRYPOINT ["/usr/local/bin/emporium-{svc}"]' in text, f"{svc}: wrong ENTRYPOINT"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert svc in compose and compose[svc]["image"].startswith(f"emporium/{svc}:"), f"compose.yaml runs no {svc}"
    assert (DEPLOY / "observability" / "grafana" / f"{svc}-overview.json").exists(), f"no dashboard for {svc}: run generate.py"


@per_service
def test_every_overlay_runs_the_service_from_its_image(svc, overlays):
    for name, ov in overlays.items():
        d = ov.get("Deployment", svc)
        assert d is not None, f"{name}: no Deployment {svc}"
        containers = d["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == [svc], f"{name}/{svc}: containers {[c['name'] for c in containers]}"
        image = containers[0]["image"]
        assert re.search(rf"/emporium/{svc}:[^:/]+$", image), f"{name}/{svc}: image {image} is not emporium/{svc} rewritten by the overlay"


@per_service
def test_ports_match_the_configuration_and_the_code(svc, overlays):
    s = _service(svc)
    assert s.get("ADMIN_ADDR") == "[::]:9090", f"{svc}: admin must listen on [::]:9090"
    if s.grpc_port:
        assert s.grpc_port == rust_config(svc).default_grpc_port(), f"{svc}: GRPC_ADDR port {s.grpc_port}, the code's default is {rust_config(svc).default_grpc_port()}"
    for name, ov in overlays.items():
        c = ov.get("Deployment", svc)["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        want = {"admin": 9090, **({"grpc": s.grpc_port} if s.grpc_port else {}), **({"http": s.http_port} if s.http_port else {})}
        assert ports == want, f"{name}/{svc}: container ports {ports}, configuration says {want}"


@per_service
def test_grpc_servers_are_probed_with_their_health_service(svc, overlays):
    s = _service(svc)
    if not s.grpc_port:
        pytest.skip(f"{svc} serves no gRPC")
    for name, ov in overlays.items():
        if name == "mesh":
            continue  # probes go to /readyz on the admin port there (test_mesh.py)
        c = ov.get("Deployment", svc)["spec"]["template"]["spec"]["containers"][0]
        startup, ready = c["startupProbe"].get("grpc"), c["readinessProbe"].get("grpc")
        assert startup and startup["port"] == s.grpc_port and startup.get("service", "") == "", f"{name}/{svc}: startup must ask grpc.health for \"\" on {s.grpc_port}"
        assert ready and ready["port"] == s.grpc_port and ready.get("service") == s.grpc_service_name, f"{name}/{svc}: readiness must ask grpc.health for {s.grpc_service_name} on {s.grpc_port}"
        assert c["livenessProbe"]["httpGet"]["path"] == "/livez", f"{name}/{svc}: liveness is /livez"


@per_service
def test_grpc_servers_have_a_clusterip_and_a_headless_service(svc, overlays):
    s = _service(svc)
    if not s.grpc_port:
        pytest.skip(f"{svc} serves no gRPC")
    for name, ov in overlays.items():
        plain, headless = ov.get("Service", svc), ov.get("Service", f"{svc}-grpc")
        assert plain is not None and plain["spec"].get("type", "ClusterIP") == "ClusterIP", f"{name}: no ClusterIP Service {svc}"
        assert {p["port"] for p in plain["spec"]["ports"]} == {s.grpc_port, 9090}, f"{name}: Service {svc} must carry gRPC and admin"
        assert headless is not None and headless["spec"].get("clusterIP") == "None", f"{name}: {svc}-grpc must be headless"
        assert [(p["port"], p.get("appProtocol")) for p in headless["spec"]["ports"]] == [(s.grpc_port, "kubernetes.io/h2c")], f"{name}: {svc}-grpc ports"


@per_service
def test_databases_are_one_per_service_with_secret_job_and_init_script(svc, overlays):
    rc = rust_config(svc)
    s = _service(svc)
    if not rc.has_database() or rc.has_store_choice():
        assert not s.has_database, f"{svc} has no database in the cluster, but a database.env"
        pytest.skip(f"{svc} keeps no data in PostgreSQL")
    prefix = s.prefix + "DATABASE__"
    assert s.database.get(prefix + "URL_FILE") == f"/var/run/secrets/emporium/{svc}-db/url", f"{svc}: URL_FILE must be the {svc}-db Secret's url"
    assert s.database.get(prefix + "MIGRATE_ON_START") == "false", f"{svc}: replicas must not migrate (the {svc}-migrate Job does)"
    assert not any(k.startswith(prefix) for k in s.config), f"{svc}: database keys belong in database.env (the Jobs read only that)"

    # dev: the Secret's URL names the service's own database and role, and the
    # init script creates exactly that role (same password) owning that database.
    dev = overlays["dev"]
    url = urlsplit(dev.secret_data(next(x["metadata"]["name"] for x in dev.of_kind("Secret") if x["metadata"]["name"].startswith(f"{svc}-db-")))["url"])
    assert (url.scheme, url.username, url.path) == ("postgres", svc, f"/{svc}"), f"dev {svc}-db: {url.geturl()} is not database {svc} as role {svc}"
    script = DEV_SECRETS / "postgres-initdb" / f"10-{svc}.sql"
    assert script.exists(), f"no {script.relative_to(REPO)}"
    sql = script.read_text()
    assert CREATE_ROLE.findall(sql) == [(svc, url.password)], f"{script.name}: must create role {svc} with the password of secrets/{svc}-db-url"
    assert CREATE_DB.findall(sql) == [(svc, svc)], f"{script.name}: must create database {svc} owned by {svc}"
    initdb = next(x for x in dev.of_kind("Secret") if x["metadata"]["name"].startswith("postgres-initdb"))
    assert f"10-{svc}.sql" in initdb["data"], f"postgres-initdb does not carry 10-{svc}.sql"

    # prod: listed out-of-band, its example also per service.
    example = urlsplit(overlays["prod"].secret_data(f"{svc}-db")["url"])
    assert (example.username, example.path) == (svc, f"/{svc}"), f"prod {svc}-db example {example.geturl()}"

    # Compose: same database, role and password as its init script.
    compose_url = urlsplit((DEPLOY / "compose" / "secrets" / f"{svc}-db-url").read_text().strip())
    compose_sql = (DEPLOY / "compose" / "initdb" / f"10-{svc}.sql").read_text()
    assert CREATE_ROLE.findall(compose_sql) == [(svc, compose_url.password)] and compose_url.path == f"/{svc}", f"compose: {svc} database"

    # The migrations Job: its own Secret only, `emporium migrate <svc>`.
    for name, ov in overlays.items():
        job = ov.workload(f"Job/{svc}-migrate")
        c = job.containers()[0]
        assert c["args"] == ["migrate", svc], f"{name}: {svc}-migrate runs {c['args']}"
        secrets = {v["secret"]["secretName"].rsplit("-", 1)[0] if name == "dev" else v["secret"]["secretName"] for v in job.spec.get("volumes", []) if "secret" in v}
        assert secrets == {f"{svc}-db"}, f"{name}: {svc}-migrate mounts {secrets}, want only {svc}-db"
        assert job.spec["serviceAccountName"] == svc, f"{name}: {svc}-migrate runs as {job.spec['serviceAccountName']}"


def test_every_launcher_service_is_deployed():
    assert launcher_services(), "no services found in the launcher"
    missing = set(launcher_services()) - set(deployed()) - set(NOT_YET_DEPLOYED)
    assert not missing, f"services without deploy/k8s/base/<svc>/: {sorted(missing)}"


def test_pending_services_are_not_deployed_yet():
    done = set(NOT_YET_DEPLOYED) & set(deployed())
    assert not done, f"{sorted(done)} now deployed: remove them from NOT_YET_DEPLOYED so every check applies"


def test_database_roles_are_distinct():
    for folder in (DEV_SECRETS / "postgres-initdb", DEPLOY / "compose" / "initdb"):
        roles = [r for p in sorted(folder.glob("*.sql")) for r, _ in CREATE_ROLE.findall(p.read_text())]
        assert len(roles) == len(set(roles)), f"{folder}: a role is shared: {roles}"
        passwords = [pw for p in sorted(folder.glob("*.sql")) for _, pw in CREATE_ROLE.findall(p.read_text())]
        assert len(passwords) == len(set(passwords)), f"{folder}: a password is shared"


def test_every_job_has_its_compose_counterpart(overlays):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    for w in overlays["dev"].workloads:
        if w.kind != "Job":
            continue
        assert w.name in compose, f"compose.yaml has no one-shot {w.name}"
        assert compose[w.name]["command"] == w.containers()[0]["args"], f"compose {w.name} runs {compose[w.name]['command']}, the Job {w.containers()[0]['args']}"
