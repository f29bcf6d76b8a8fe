"""Fixtures for the deployment policy tests.

Every test that takes `overlay` runs once per folder of deploy/k8s/overlays, over
that overlay as `kubectl kustomize` renders it. deploy/validate.sh renders them
first and passes the folder in EMPORIUM_RENDER_DIR; run alone, the tests render
with $KUBECTL (or kubectl on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from model import Overlay, load_yaml_documents  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = sorted(p.name for p in (DEPLOY / "k8s" / "overlays").iterdir() if (p / "kustomization.yaml").exists())


def _render(name: str) -> list[dict]:
    render_dir = os.environ.get("EMPORIUM_RENDER_DIR")
    if render_dir:
        return load_yaml_documents(Path(render_dir) / f"{name}.yaml")
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not kubectl:
        pytest.fail("no rendered overlays: run deploy/validate.sh, or set KUBECTL")
    out = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / name)], check=True, capture_output=True, text=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _out_of_band(name: str) -> dict:
    path = DEPLOY / "k8s" / "overlays" / name / "secrets.required.yaml"
    if not path.exists():
        return {}
    doc = yaml.safe_load(path.read_text())
    return {s["name"]: s["keys"] for s in doc.get("secrets", [])}


_cache: dict[str, Overlay] = {}


def load_overlay(name: str) -> Overlay:
    if name not in _cache:
        _cache[name] = Overlay(name, _render(name), _out_of_band(name))
    return _cache[name]


def pytest_generate_tests(metafunc):
    if "overlay" in metafunc.fixturenames:
        metafunc.parametrize("overlay", OVERLAYS, indirect=True)


@pytest.fixture
def overlay(request) -> Overlay:
    return load_overlay(request.param)


@pytest.fixture(scope="session")
def overlays() -> dict[str, Overlay]:
    return {name: load_overlay(name) for name in OVERLAYS}
