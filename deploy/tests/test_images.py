"""Each image's Dockerfile builds a non-root, shell-less image that fits how the
manifests run it."""

from __future__ import annotations

import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[1]
REPO = DEPLOY.parent
DOCKERFILES = sorted((DEPLOY / "docker").glob("*/Dockerfile"))
OCI = ["title", "description", "version", "revision", "created", "licenses", "source"]


def _final_stage(text: str) -> str:
    return re.split(r"^FROM ", text, flags=re.M)[-1]


def test_there_is_a_dockerfile_per_image():
    assert {p.parent.name for p in DOCKERFILES} >= {"gateway", "catalog", "emporium"}


def test_each_dockerfile_builds_and_runs_the_binary_its_folder_names():
    # Services are built with the release profile; the tools binary (Jobs only)
    # with the size-optimised `tools` profile, which must exist in Cargo.toml and be
    # what deploy/images/build.sh uses for it too.
    cargo = (REPO / "Cargo.toml").read_text()
    assert "[profile.tools]" in cargo
    build_sh = (REPO / "deploy" / "images" / "build.sh").read_text()
    assert 'profile_of() { if [[ $1 == emporium ]]; then echo tools; else echo release; fi; }' in build_sh
    for path in DOCKERFILES:
        name = path.parent.name
        binary = "emporium" if name == "emporium" else f"emporium-{name}"
        profile = "--profile tools" if name == "emporium" else "--release"
        folder = "tools" if name == "emporium" else "release"
        text = path.read_text()
        assert f"cargo build {profile} --locked --target \"$RUST_TARGET\" -p {binary} " in text, f"{name}: does not build {binary} ({profile})"
        assert f'{folder}/{binary}"' in text, f"{name}: does not collect {binary}"
        assert f'ENTRYPOINT ["/usr/local/bin/{binary}"]' in text, f"{name}: ENTRYPOINT is not {binary}"
        assert (path.parent / "Dockerfile.dockerignore").exists(), f"{name}: no Dockerfile.dockerignore (the context is the repository)"


def test_dockerfiles_are_multi_stage_non_root_and_shell_free():
    for path in DOCKERFILES:
        text = path.read_text()
        final = _final_stage(text)
        name = path.parent.name
        assert "rust:${RUST_VERSION}-${DEBIAN_SUITE} AS builder" in text, f"{name}: no Rust builder stage"
        assert "--platform=$BUILDPLATFORM" in text, f"{name}: the builder must run natively for cross builds"
        assert "FROM scratch AS rootfs-prebuilt" in text and "FROM scratch AS rootfs-source" in text, name
        assert final.startswith("rootfs-${BINARY_SOURCE}"), f"{name}: the image must be the scratch rootfs"
        assert "\nRUN " not in final, f"{name}: the runtime stage cannot RUN anything (no shell)"
        assert re.search(r"^USER 65532:65532$", final, re.M), f"{name}: not user 65532"
        assert re.search(r"^STOPSIGNAL SIGTERM$", final, re.M), name
        assert re.search(r'^ENTRYPOINT \["/usr/local/bin/[a-z-]+"\]$', final, re.M), f"{name}: exec-form ENTRYPOINT expected"
        for label in OCI:
            assert f"org.opencontainers.image.{label}=" in final, f"{name}: no OCI label {label}"


def test_exposed_ports_are_the_ports_the_deployment_declares(overlays):
    ov = next(iter(overlays.values()))
    for path in DOCKERFILES:
        image = path.parent.name
        exposed = {int(p.split("/")[0]) for line in re.findall(r"^EXPOSE (.+)$", path.read_text(), re.M) for p in line.split()}
        for d in ov.of_kind("Deployment"):
            for c in d["spec"]["template"]["spec"]["containers"]:
                if c["image"].rsplit(":", 1)[0].endswith(f"/emporium/{image}"):
                    declared = {p["containerPort"] for p in c.get("ports", [])}
                    assert declared == exposed, f"{image}: EXPOSE {sorted(exposed)} but {d['metadata']['name']} declares {sorted(declared)}"


def test_every_image_the_manifests_run_has_a_dockerfile(overlays):
    images = {p.parent.name for p in DOCKERFILES}
    for ov in overlays.values():
        for w in ov.workloads:
            for c in w.containers():
                m = re.search(r"(?:^|/)emporium/([a-z0-9-]+):", c["image"])
                if m:
                    assert m[1] in images, f"{w.id}: {c['image']} has no deploy/docker/{m[1]}/Dockerfile"


def test_the_documented_sizes_cover_every_image_and_meet_the_target():
    # docs/deployment.md holds the table deploy/images/build.sh printed: one row
    # per Dockerfile, each image below the 30 MB aim.
    doc = (REPO / "docs" / "deployment.md").read_text()
    table = doc.split("<!-- SIZES:", 1)[1].split("<!-- /SIZES -->", 1)[0]
    rows = re.findall(r"^\| emporium/([a-z-]+) \| [^|]+ \| ([0-9.]+) MB \| ([0-9.]+) MB \|$", table, flags=re.M)
    assert sorted(name for name, _, _ in rows) == sorted(p.parent.name for p in DOCKERFILES)
    for name, image, binary in rows:
        assert float(binary) < float(image) < 30.0, f"{name}: {image} MB"
