"""Operator Jobs kept outside the overlays (deploy/k8s/jobs): each runs like the
rendered Job it is modelled on, in every overlay, so it reaches the same database
with the same identity and hardening. The Kubernetes schema check is in
deploy/validate.sh (strict, with the overlays)."""

from __future__ import annotations

import copy
import re

from conftest import DEPLOY
from model import Overlay, load_yaml_documents

JOBS = DEPLOY / "k8s" / "jobs"


def grant_admin() -> dict:
    (job,) = load_yaml_documents(JOBS / "grant-admin.yaml")
    return job


def without_hash_suffixes(volumes: list[dict]) -> list[dict]:
    """Volumes with a generated Secret's content hash taken off its name (the dev
    overlay generates its database Secrets; the docs say how to name it there)."""
    out = copy.deepcopy(volumes)
    for v in out:
        if "secret" in v:
            v["secret"]["secretName"] = re.sub(r"-[a-z0-9]{10}$", "", v["secret"]["secretName"])
    return out


def image_tag(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":")
    return name, tag


def test_grant_admin_runs_the_launcher_on_the_e_mail_it_is_given():
    job = grant_admin()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["accounts", "grant-admin", "$(ADMIN_EMAIL)"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "@" in env["ADMIN_EMAIL"], "ADMIN_EMAIL is the account to grant"
    assert env["USER"], "the audit line names who ran it"
    # Retried a little (granting is idempotent), bounded, and cleaned up.
    assert job["spec"]["backoffLimit"] <= 3
    assert job["spec"]["activeDeadlineSeconds"] <= 600
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_grant_admin_reaches_the_database_as_accounts_migrate_does(overlay: Overlay):
    job = grant_admin()
    pod = job["spec"]["template"]
    migrate = overlay.workload("Job/accounts-migrate")
    (ours,) = pod["spec"]["containers"]
    (theirs,) = migrate.spec["containers"]
    # Same identity, hardening, volumes and mounts: the same Secret, read the same way.
    for key in ("serviceAccountName", "automountServiceAccountToken", "securityContext"):
        assert pod["spec"].get(key) == migrate.spec.get(key), key
    assert pod["spec"]["volumes"] == without_hash_suffixes(migrate.spec["volumes"])
    for key in ("securityContext", "volumeMounts", "resources"):
        assert ours.get(key) == theirs.get(key), key
    # The network policies that admit the migration admit this Job too.
    assert pod["metadata"]["labels"]["emporium.io/postgres-client"] == migrate.labels["emporium.io/postgres-client"]
    # The database setting is the value the overlay's ConfigMap gives the migration.
    env = {e["name"]: e.get("value") for e in ours["env"]}
    theirs_env = overlay.environment(migrate, theirs)
    key = "EMPORIUM_ACCOUNTS__DATABASE__URL_FILE"
    assert env[key] == theirs_env[key]
    # The launcher image, at the release the overlay runs.
    ours_name, ours_tag = image_tag(ours["image"])
    theirs_name, theirs_tag = image_tag(theirs["image"])
    assert theirs_name.endswith(ours_name) and ours_tag == theirs_tag
