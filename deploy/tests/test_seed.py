"""The catalog seed inside the Kustomize tree is the repository's data file."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_seed_copy_equals_data_catalog_json():
    source = REPO / "data" / "catalog.json"
    copy = REPO / "deploy" / "k8s" / "base" / "seed" / "catalog.json"
    assert copy.read_bytes() == source.read_bytes(), "deploy/k8s/base/seed/catalog.json is stale: run deploy/k8s/sync-seed.sh"


def test_seed_configmap_carries_the_data_file(overlay):
    seeds = [cm for cm in overlay.of_kind("ConfigMap") if cm["metadata"]["name"].startswith("catalog-seed")]
    assert len(seeds) == 1
    assert seeds[0]["data"]["catalog.json"] == (REPO / "data" / "catalog.json").read_text(encoding="utf-8")
