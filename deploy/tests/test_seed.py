"""The data files inside the Kustomize tree are the repository's data files.

kustomize reads nothing outside its root, so deploy/k8s/base/seed/ holds copies
of data/*.json (the seed catalog, the seed stock, the currency rates), kept
equal by deploy/k8s/sync-seed.sh; the ConfigMaps built from them must carry
exactly those bytes."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA_FILES = sorted(p.name for p in (REPO / "data").glob("*.json"))
SEED = REPO / "deploy" / "k8s" / "base" / "seed"
# The ConfigMap built from each data file, and who reads it.
CONFIGMAPS = {"catalog.json": "catalog-seed", "stock.json": "stock-seed", "currency-rates.json": "currency-rates"}


def test_the_known_data_files_are_there():
    # Guards the parametrization below against an empty or renamed data/.
    assert set(CONFIGMAPS) <= set(DATA_FILES), DATA_FILES


@pytest.mark.parametrize("name", DATA_FILES)
def test_seed_copy_equals_the_data_file(name):
    copy = SEED / name
    assert copy.exists(), f"deploy/k8s/base/seed/{name} is missing: run deploy/k8s/sync-seed.sh"
    assert copy.read_bytes() == (REPO / "data" / name).read_bytes(), f"deploy/k8s/base/seed/{name} is stale: run deploy/k8s/sync-seed.sh"


@pytest.mark.parametrize("name", DATA_FILES)
def test_every_data_file_reaches_a_configmap(name):
    assert name in CONFIGMAPS, f"data/{name} has a seed copy but no ConfigMap: add it to deploy/k8s/base/kustomization.yaml and here"


def test_seed_configmaps_carry_the_data_files(overlay):
    text = {name: (REPO / "data" / name).read_text(encoding="utf-8") for name in CONFIGMAPS}
    for name, cm_name in CONFIGMAPS.items():
        found = [cm for cm in overlay.of_kind("ConfigMap") if cm["metadata"]["name"] == cm_name or cm["metadata"]["name"].startswith(cm_name + "-")]
        if overlay.name in ("prod", "mesh") and cm_name == "stock-seed":
            assert not found, f"{overlay.name} (prod) seeds no stock (overlays/prod/patches/no-stock-*.yaml)"
            continue
        assert len(found) == 1, f"{overlay.name}: {len(found)} ConfigMaps named {cm_name}"
        assert found[0]["data"][name] == text[name], f"{overlay.name}: ConfigMap {cm_name} does not carry data/{name}"


def test_seed_jobs_read_the_seed_configmaps(overlays):
    dev = overlays["dev"]
    for job, cm_name, args in (("catalog-import", "catalog-seed", ["import", "catalog", "/seed/catalog.json"]), ("stock-import", "stock-seed", ["import", "stock", "/seed/stock.json"])):
        w = dev.workload(f"Job/{job}")
        container = w.containers()[0]
        assert container["args"] == args, f"{job}: args {container['args']}"
        kind, name, key = dev.mounted_file(w, container, args[-1])
        assert kind == "ConfigMap" and name.startswith(cm_name), f"{job}: {args[-1]} is not from {cm_name}"
    assert overlays["prod"].get("Job", "stock-import") is None, "prod must not re-seed stock (it would undo sales)"
