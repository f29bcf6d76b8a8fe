"""Every pod the overlays create is sized, probed, hardened and pinned, and every
Deployment rolls out without losing capacity and drains before it is killed."""

from __future__ import annotations

import re

from model import Overlay, parse_duration

APP_USER = 65532


def _our_image(image: str) -> bool:
    return "/emporium/" in f"/{image}"


def test_every_container_has_requests_and_a_memory_limit(overlay: Overlay):
    problems = []
    for w in overlay.workloads:
        for c in w.containers():
            res = c.get("resources", {})
            req, lim = res.get("requests", {}), res.get("limits", {})
            if not {"cpu", "memory"} <= req.keys():
                problems.append(f"{w.id}/{c['name']}: requests need cpu and memory, got {req}")
            if "memory" not in lim:
                problems.append(f"{w.id}/{c['name']}: no memory limit")
    assert not problems, "\n".join(problems)


def test_long_running_containers_have_startup_liveness_and_readiness_probes(overlay: Overlay):
    problems = [
        f"{w.id}/{c['name']}: no {probe}"
        for w in overlay.workloads
        if w.long_running
        for c in w.containers(include_init=False)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        if probe not in c
    ]
    assert not problems, "\n".join(problems)


def test_probe_ports_are_ports_the_container_declares(overlay: Overlay):
    problems = []
    for w in overlay.workloads:
        for c in w.containers(include_init=False):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                p = c.get(probe)
                if not p:
                    continue
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    if handler in p and w.container_port(p[handler]["port"], c) is None:
                        problems.append(f"{w.id}/{c['name']} {probe}.{handler}.port {p[handler]['port']} is not a container port")
                if "grpc" in p:
                    names = {pt.get("name") for pt in c.get("ports", []) if pt["containerPort"] == p["grpc"]["port"]}
                    if "grpc" not in names:
                        problems.append(f"{w.id}/{c['name']} {probe} uses gRPC on a port not named grpc")
    assert not problems, "\n".join(problems)


def test_our_services_probe_livez_readyz_or_grpc_health(overlay: Overlay):
    for w in overlay.workloads:
        for c in w.containers(include_init=False):
            if not (w.long_running and _our_image(c["image"])):
                continue
            live = c["livenessProbe"].get("httpGet", {})
            assert (live.get("path"), w.container_port(live.get("port"), c)) == ("/livez", 9090), f"{w.id}: liveness must be GET /livez on admin 9090"
            ready = c["readinessProbe"]
            assert ready.get("httpGet", {}).get("path") == "/readyz" or "grpc" in ready, f"{w.id}: readiness must be /readyz or a gRPC health probe"
            # The mesh admits only authorized callers on gRPC ports, so there the
            # kubelet asks /readyz on the admin port (test_mesh.py).
            if w.container_port("grpc", c) and overlay.name != "mesh":
                assert "grpc" in c["startupProbe"] or "grpc" in ready, f"{w.id}: a gRPC server is probed with native gRPC probes"


def test_every_pod_runs_non_root_read_only_without_capabilities(overlay: Overlay):
    problems = []
    for w in overlay.workloads:
        pod_sc = w.spec.get("securityContext", {})
        if w.spec.get("hostNetwork") or w.spec.get("hostPID") or w.spec.get("hostIPC"):
            problems.append(f"{w.id}: shares a host namespace")
        for c in w.containers():
            sc = c.get("securityContext", {})
            where = f"{w.id}/{c['name']}"
            run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            user = sc.get("runAsUser", pod_sc.get("runAsUser"))
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
            if run_as_non_root is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if not user:
                problems.append(f"{where}: runAsUser is unset or 0")
            if _our_image(c["image"]) and user != APP_USER:
                problems.append(f"{where}: our images run as {APP_USER}, not {user}")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
                problems.append(f"{where}: capabilities are not dropped (ALL)")
            if sc.get("capabilities", {}).get("add"):
                problems.append(f"{where}: adds capabilities")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            if seccomp != "RuntimeDefault":
                problems.append(f"{where}: seccomp profile is {seccomp}, not RuntimeDefault")
    assert not problems, "\n".join(problems)


def test_service_accounts_exist_and_mount_no_token(overlay: Overlay):
    problems = []
    for w in overlay.workloads:
        sa_name = w.spec.get("serviceAccountName", "default")
        sa = overlay.get("ServiceAccount", sa_name)
        if sa is None:
            problems.append(f"{w.id}: ServiceAccount {sa_name} is not in the render")
        elif sa.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount {sa_name}: automountServiceAccountToken is not false")
        if w.spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{w.id}: pod automountServiceAccountToken is not false")
    assert not problems, "\n".join(problems)


def test_every_image_is_pinned_to_a_release_tag(overlay: Overlay):
    problems = []
    for w in overlay.workloads:
        for c in w.containers():
            image = c["image"]
            if "@sha256:" in image:
                continue
            name, _, tag = image.rpartition(":")
            if not name or "/" in tag or tag in ("", "latest"):
                problems.append(f"{w.id}/{c['name']}: {image} has no pinned tag")
            elif not re.fullmatch(r"v?\d+\.\d+(\.\d+)?([-.+][0-9A-Za-z.-]+)?", tag):
                problems.append(f"{w.id}/{c['name']}: {image}: tag {tag!r} is not a release version")
            if c.get("imagePullPolicy") == "Always":
                problems.append(f"{w.id}/{c['name']}: imagePullPolicy Always defeats the pin")
    assert not problems, "\n".join(problems)


def test_overlays_set_the_registry_and_tag_of_our_images(overlay: Overlay):
    # The base names images emporium/<svc>; each overlay's `images:` must rewrite them.
    bare = [c["image"] for w in overlay.workloads for c in w.containers() if c["image"].startswith("emporium/")]
    assert not bare, f"{overlay.name}: images not rewritten by the overlay's kustomize images: {bare}"


def test_deployments_roll_out_without_losing_capacity(overlay: Overlay):
    problems = []
    for d in overlay.of_kind("Deployment"):
        name, spec = d["metadata"]["name"], d["spec"]
        strategy = spec.get("strategy", {})
        if strategy.get("type") != "RollingUpdate" or strategy.get("rollingUpdate", {}).get("maxUnavailable") != 0:
            problems.append(f"{name}: needs RollingUpdate with maxUnavailable 0")
        if not spec.get("revisionHistoryLimit"):
            problems.append(f"{name}: revisionHistoryLimit unset")
        if not spec.get("minReadySeconds"):
            problems.append(f"{name}: minReadySeconds unset")
    assert not problems, "\n".join(problems)


def test_termination_grace_outlasts_pre_stop_plus_drain_deadline(overlay: Overlay):
    problems = []
    for w in overlay.workloads:
        if w.kind != "Deployment":
            continue
        grace = w.spec.get("terminationGracePeriodSeconds", 30)
        for c in w.containers(include_init=False):
            sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
            if sleep is None:
                problems.append(f"{w.id}/{c['name']}: no preStop sleep (the pod would drain before endpoints forget it)")
                continue
            env = overlay.environment(w, c)
            drains = [v for k, v in env.items() if re.fullmatch(r"EMPORIUM_[A-Z0-9_]+__SHUTDOWN__DRAIN_TIMEOUT", k)]
            if len(drains) != 1:
                problems.append(f"{w.id}/{c['name']}: configuration must set exactly one …__SHUTDOWN__DRAIN_TIMEOUT, found {drains}")
                continue
            drain = parse_duration(drains[0])
            if not grace > sleep + drain:
                problems.append(f"{w.id}: terminationGracePeriodSeconds {grace} <= preStop {sleep}s + drain {drain:g}s")
    assert not problems, "\n".join(problems)


def test_every_deployment_has_a_disruption_budget_and_a_cpu_autoscaler(overlay: Overlay):
    problems = []
    for w in overlay.workloads:
        if w.kind != "Deployment":
            continue
        pdbs = [p for p in overlay.of_kind("PodDisruptionBudget") if w in overlay.pods_selected(p["spec"]["selector"])]
        if len(pdbs) != 1:
            problems.append(f"{w.id}: {len(pdbs)} PodDisruptionBudgets select it (want 1)")
        hpas = [
            h
            for h in overlay.of_kind("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["kind"] == "Deployment" and h["spec"]["scaleTargetRef"]["name"] == w.name
        ]
        if len(hpas) != 1:
            problems.append(f"{w.id}: {len(hpas)} HorizontalPodAutoscalers target it (want 1)")
            continue
        hpa = hpas[0]
        if hpa["apiVersion"] != "autoscaling/v2":
            problems.append(f"{w.id}: HPA is {hpa['apiVersion']}")
        if not any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"].get("metrics", [])):
            problems.append(f"{w.id}: HPA does not scale on CPU")
        if "replicas" in w.obj["spec"]:
            problems.append(f"{w.id}: sets replicas although an HPA owns the count")
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            problems.append(f"{w.id}: HPA minReplicas > maxReplicas")
    for hpa in overlay.of_kind("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if overlay.get(ref["kind"], ref["name"]) is None:
            problems.append(f"HPA {hpa['metadata']['name']} targets missing {ref['kind']}/{ref['name']}")
    assert not problems, "\n".join(problems)


def test_metrics_ports_are_labelled_for_scraping(overlay: Overlay):
    # The scrape label drives both Prometheus discovery and the scrape NetworkPolicy.
    problems = []
    for w in overlay.workloads:
        has_admin = w.container_port("admin") == 9090
        labelled = w.labels.get("emporium.io/scrape") == "true"
        if has_admin != labelled:
            problems.append(f"{w.id}: admin port 9090 present={has_admin} but emporium.io/scrape label={labelled}")
    assert not problems, "\n".join(problems)


def test_recommended_labels_on_every_object(overlay: Overlay):
    problems = []
    for o in overlay.objects:
        labels = o["metadata"].get("labels", {})
        where = f"{o['kind']}/{o['metadata']['name']}"
        if labels.get("app.kubernetes.io/part-of") != "emporium":
            problems.append(f"{where}: no part-of=emporium")
        if o["kind"] != "Namespace" and not {"app.kubernetes.io/name", "app.kubernetes.io/component"} <= labels.keys():
            problems.append(f"{where}: needs app.kubernetes.io/name and component")
    for w in overlay.workloads:
        if w.labels.get("app.kubernetes.io/name") != w.obj["metadata"]["labels"].get("app.kubernetes.io/name"):
            problems.append(f"{w.id}: pods are not labelled with the workload's name")
    assert not problems, "\n".join(problems)


def test_prod_runs_no_stateful_backing_stores_and_spreads_pods(overlays):
    prod = overlays.get("prod")
    assert prod is not None, "a prod overlay is expected"
    assert not prod.of_kind("StatefulSet"), "prod uses managed stores; no StatefulSet"
    assert not prod.of_kind("PersistentVolumeClaim")
    for d in prod.of_kind("Deployment"):
        keys = {t["topologyKey"] for t in d["spec"]["template"]["spec"].get("topologySpreadConstraints", [])}
        assert {"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= keys, f"{d['metadata']['name']}: no zone+node spread"


def test_dev_runs_each_backing_store_as_a_statefulset_with_a_volume(overlays):
    dev = overlays.get("dev")
    assert dev is not None, "a dev overlay is expected"
    for name in ("postgres", "nats", "redis"):
        sts = dev.get("StatefulSet", name)
        assert sts is not None, f"dev has no {name} StatefulSet"
        claims = sts["spec"].get("volumeClaimTemplates", [])
        assert claims, f"{name}: no volumeClaimTemplates"
        mounted = {m["name"] for c in sts["spec"]["template"]["spec"]["containers"] for m in c.get("volumeMounts", [])}
        assert {c["metadata"]["name"] for c in claims} <= mounted, f"{name}: claim not mounted"
