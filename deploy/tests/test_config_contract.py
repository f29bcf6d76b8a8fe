"""The configuration the manifests give each service is one its code accepts,
and says what the code needs.

Each service deserializes EMPORIUM_<SVC>__… into its config struct with
`deny_unknown_fields`, so a misspelt key does not get ignored: the pod exits
with code 64 and crash-loops. These tests read the structs from
services/<svc>/src/config.rs (see services.py) and check, without building
anything, every variable every workload gets, then the settings that tie
services together: upstream URLs and deadlines, token issuer and audience,
the signing key, the cart's Redis, the currency rates and the accounts'
password-hashing memory.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import urlsplit

import pytest
import yaml

from model import Overlay, parse_duration
from services import PROCESS_VARS, REPO, SERVICE_VAR, check_value, deployed, rust_config

DEPLOY = REPO / "deploy"
DEV_KEY = DEPLOY / "k8s" / "overlays" / "dev" / "secrets" / "jwt-signing-key.pem"
# PKCS#8 (RFC 8410) wrapping of a 32-byte Ed25519 private key: this DER prefix, then the key.
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
# accounts computes at most PASSWORD_HASHING__MAX_CONCURRENT hashes at once, each
# holding one argon2id block of MEMORY_KIB; its memory limit must hold them all on
# top of the idle process (see docs/performance.md).
ACCOUNTS_BASELINE_MIB = 32


def _mib(quantity: str) -> float:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", quantity)
    assert m, f"memory quantity {quantity!r}"
    return int(m[1]) * {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, None: 1 / 2**20}[m[2]]


def _env_of(overlay: Overlay, name: str) -> dict[str, str]:
    w = overlay.workload(f"Deployment/{name}")
    return overlay.environment(w, w.containers(include_init=False)[0])


def test_every_variable_is_a_setting_the_service_accepts(overlay: Overlay):
    problems = []
    for w in overlay.workloads:
        for c in w.containers():
            for var, value in overlay.environment(w, c).items():
                if not var.startswith("EMPORIUM_") or var in PROCESS_VARS:
                    continue
                m = SERVICE_VAR.match(var)
                if not m or m[1].lower() not in deployed():
                    problems.append(f"{w.id}: {var} names no service's settings")
                    continue
                resolved = rust_config(m[1].lower()).resolve(var)
                if isinstance(resolved, str):
                    problems.append(f"{w.id}: {resolved}")
                    continue
                if not var.endswith("_FILE") and (bad := check_value(resolved[1], value, rust_config(m[1].lower()).enums)):
                    problems.append(f"{w.id}: {var}: {bad}")
    assert not problems, "\n".join(problems)


def test_compose_variables_are_settings_the_services_accept():
    text = re.sub(r"\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}", r"\1", (DEPLOY / "compose.yaml").read_text())
    problems = []
    for name, svc in yaml.safe_load(text)["services"].items():
        for var, value in (svc.get("environment") or {}).items():
            if not var.startswith("EMPORIUM_") or var in PROCESS_VARS:
                continue
            m = SERVICE_VAR.match(var)
            resolved = rust_config(m[1].lower()).resolve(var) if m and m[1].lower() in deployed() else f"{var} names no service"
            if isinstance(resolved, str):
                problems.append(f"{name}: {resolved}")
            elif not var.endswith("_FILE") and (bad := check_value(resolved[1], str(value), rust_config(m[1].lower()).enums)):
                problems.append(f"{name}: {var}: {bad}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("svc", sorted(deployed()))
def test_every_upstream_is_configured_through_its_headless_service(svc, overlays):
    """Each `Upstream` field of the config struct gets a URL naming the callee's
    headless <callee>-grpc Service on its gRPC port, and an explicit deadline."""
    rc = rust_config(svc)
    for name, ov in overlays.items():
        env = _env_of(ov, svc)
        prefix = f"EMPORIUM_{svc.upper()}__"
        configured = {k[len(prefix) : -len("__URL")].lower() for k in env if k.startswith(prefix) and k.endswith("__URL")}
        assert configured == set(rc.upstreams()), f"{name}/{svc}: URLs for {sorted(configured)}, the code calls {sorted(rc.upstreams())}"
        for upstream in rc.upstreams():
            url = urlsplit(env[f"{prefix}{upstream.upper()}__URL"])
            callee = deployed()[upstream]
            assert url.scheme == "http" and url.hostname == f"{upstream}-grpc.emporium.svc.cluster.local", f"{name}/{svc}: {upstream} URL {url.geturl()} is not the headless {upstream}-grpc"
            assert url.port == callee.grpc_port, f"{name}/{svc}: {upstream} URL port {url.port}, {upstream} serves gRPC on {callee.grpc_port}"
            timeout = env.get(f"{prefix}{upstream.upper()}__TIMEOUT")
            assert timeout, f"{name}/{svc}: set {prefix}{upstream.upper()}__TIMEOUT (the deadlines are checked against each other)"


def test_upstream_deadlines_fit_the_callers_budgets(overlay: Overlay):
    # gateway: every upstream deadline is shorter than the whole request's.
    gw = _env_of(overlay, "gateway")
    request = parse_duration(gw.get("EMPORIUM_GATEWAY__REQUEST_TIMEOUT", "10s"))
    for upstream in rust_config("gateway").upstreams():
        t = parse_duration(gw[f"EMPORIUM_GATEWAY__{upstream.upper()}__TIMEOUT"])
        assert t < request, f"gateway: {upstream} timeout {t}s >= request_timeout {request}s (the gateway refuses to start)"
    # checkout: the saga lease outlasts every single step's deadline.
    co = _env_of(overlay, "checkout")
    lease = parse_duration(co.get("EMPORIUM_CHECKOUT__SAGA__LEASE", "30s"))
    for upstream in rust_config("checkout").upstreams():
        t = parse_duration(co[f"EMPORIUM_CHECKOUT__{upstream.upper()}__TIMEOUT"])
        assert lease > t, f"checkout: saga lease {lease}s <= {upstream} timeout {t}s (checkout refuses to start)"


def test_tokens_are_issued_for_what_the_gateway_expects(overlay: Overlay):
    accounts, gateway = _env_of(overlay, "accounts"), _env_of(overlay, "gateway")
    for claim in ("ISSUER", "AUDIENCE"):
        issued = accounts.get(f"EMPORIUM_ACCOUNTS__TOKEN__{claim}")
        expected = gateway.get(f"EMPORIUM_GATEWAY__AUTH__{claim}")
        assert issued and issued == expected, f"accounts issues {claim.lower()} {issued!r}, the gateway expects {expected!r}"


def test_only_accounts_holds_the_signing_key_and_it_is_a_file(overlay: Overlay):
    w = overlay.workload("Deployment/accounts")
    c = w.containers(include_init=False)[0]
    env = overlay.environment(w, c)
    assert "EMPORIUM_ACCOUNTS__SIGNING_KEY" not in env and "EMPORIUM_ACCOUNTS__SIGNING_KEY_PATH" not in env, "the key comes from the Secret file only"
    ref = overlay.mounted_file(w, c, env["EMPORIUM_ACCOUNTS__SIGNING_KEY_FILE"])
    assert ref and ref[0] == "Secret" and ref[1].startswith("jwt-signing-key") and ref[2] == "private-key.pem", f"SIGNING_KEY_FILE is {ref}"
    holders = {wl.id for wl in overlay.workloads for v in wl.spec.get("volumes", []) or [] if (v.get("secret") or {}).get("secretName", "").startswith("jwt-signing-key")}
    assert holders == {"Deployment/accounts"}, f"jwt-signing-key is mounted by {sorted(holders)}"


def test_the_dev_signing_key_is_a_real_ed25519_key():
    text = DEV_KEY.read_text()
    m = re.fullmatch(r"-----BEGIN PRIVATE KEY-----\n([A-Za-z0-9+/=\n]+)-----END PRIVATE KEY-----\n?", text)
    assert m, f"{DEV_KEY.name} is not a PKCS#8 PEM (BEGIN PRIVATE KEY)"
    der = base64.b64decode(m[1])
    assert len(der) == 48 and der.startswith(ED25519_PKCS8_PREFIX), f"{DEV_KEY.name} is not an Ed25519 PKCS#8 key"


def test_cart_keeps_carts_in_redis_from_a_secret(overlay: Overlay):
    w = overlay.workload("Deployment/cart")
    c = w.containers(include_init=False)[0]
    env = overlay.environment(w, c)
    assert env.get("EMPORIUM_CART__STORE") == "redis", "in a cluster carts live in Redis (SQLite is per pod)"
    assert "EMPORIUM_CART__REDIS__URL" not in env, "the Redis URL may hold a password: a Secret file"
    ref = overlay.mounted_file(w, c, env["EMPORIUM_CART__REDIS__URL_FILE"])
    assert ref and ref[0] == "Secret" and ref[1].startswith("cart-redis"), f"REDIS__URL_FILE is {ref}"
    url = overlay.read_file_value(w, c, env["EMPORIUM_CART__REDIS__URL_FILE"])
    assert urlsplit(url).scheme in ("redis", "rediss"), f"{url}: redis:// or rediss:// (TLS)"
    if "EMPORIUM_CART__REDIS__CA_CERT_FILE" in env:
        assert urlsplit(url).scheme == "rediss", "a Redis CA certificate is only used over TLS"
        assert overlay.mounted_file(w, c, env["EMPORIUM_CART__REDIS__CA_CERT_FILE"]), "CA_CERT_FILE is not mounted"
    assert w.labels.get("emporium.io/redis-client") == "true"
    assert not any(k.startswith("EMPORIUM_CART__DATABASE__") for k in env), "cart has no database in the cluster"


def test_gateway_keeps_rate_limits_in_redis_from_a_secret(overlay: Overlay):
    """Every replica must see the same counts: a per-pod memory backend would
    multiply each limit by the number of replicas."""
    w = overlay.workload("Deployment/gateway")
    c = w.containers(include_init=False)[0]
    env = overlay.environment(w, c)
    assert env.get("EMPORIUM_GATEWAY__RATE_LIMIT__MODE") in ("enforce", "shadow")
    assert env.get("EMPORIUM_GATEWAY__RATE_LIMIT__BACKEND") == "redis", "limits shared by every replica"
    assert env.get("EMPORIUM_GATEWAY__RATE_LIMIT__FAIL_MODE") in ("open", "closed")
    assert "EMPORIUM_GATEWAY__RATE_LIMIT__REDIS__URL" not in env, "the Redis URL may hold a password: a Secret file"
    path = env["EMPORIUM_GATEWAY__RATE_LIMIT__REDIS__URL_FILE"]
    ref = overlay.mounted_file(w, c, path)
    assert ref and ref[0] == "Secret" and ref[1].startswith("gateway-redis"), f"REDIS__URL_FILE is {ref}"
    url = overlay.read_file_value(w, c, path)
    assert urlsplit(url).scheme in ("redis", "rediss"), f"{url}: redis:// or rediss:// (TLS)"
    if overlay.name != "dev":
        assert urlsplit(url).scheme == "rediss", f"{url}: the managed Redis is reached over TLS"
    assert w.labels.get("emporium.io/redis-client") == "true"


def test_currency_reads_rates_from_a_live_configmap(overlay: Overlay):
    w = overlay.workload("Deployment/currency")
    c = w.containers(include_init=False)[0]
    path = overlay.environment(w, c)["EMPORIUM_CURRENCY__RATES_PATH"]
    ref = overlay.mounted_file(w, c, path)
    assert ref and ref[0] == "ConfigMap", f"RATES_PATH {path} is not in a ConfigMap mount"
    assert ref[1] == "currency-rates", f"the rates ConfigMap is {ref[1]}: it needs a stable name (no hash suffix) to change in place"
    mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
    assert "subPath" not in mount, "a subPath mount never sees ConfigMap updates"
    assert overlay.read_file_value(w, c, path) == (REPO / "data" / "currency-rates.json").read_text(), "the rates are not data/currency-rates.json"


def test_accounts_memory_fits_its_password_hashing(overlay: Overlay):
    w = overlay.workload("Deployment/accounts")
    c = w.containers(include_init=False)[0]
    env = overlay.environment(w, c)
    kib = int(env.get("EMPORIUM_ACCOUNTS__PASSWORD_HASHING__MEMORY_KIB", "19456"))
    assert "EMPORIUM_ACCOUNTS__PASSWORD_HASHING__MAX_CONCURRENT" in env, "accounts: bound concurrent hashing explicitly"
    hashes = int(env["EMPORIUM_ACCOUNTS__PASSWORD_HASHING__MAX_CONCURRENT"])
    limit = _mib(c["resources"]["limits"]["memory"])
    need = ACCOUNTS_BASELINE_MIB + hashes * kib / 1024
    assert limit >= need, (
        f"accounts: memory limit {limit:g}Mi < {ACCOUNTS_BASELINE_MIB}Mi + {hashes} concurrent "
        f"argon2id blocks of {kib} KiB ({need:g}Mi): raise the limit or lower PASSWORD_HASHING__MAX_CONCURRENT"
    )
    request = _mib(c["resources"]["requests"]["memory"])
    assert request >= ACCOUNTS_BASELINE_MIB + kib / 1024, f"accounts: memory request {request:g}Mi does not hold even one sign-in"


@pytest.mark.parametrize("svc", sorted(deployed()))
def test_services_with_events_use_nats_from_a_secret(svc, overlays):
    """A service whose config embeds the event bus must use NATS in a cluster:
    the default, an embedded log file per pod, would be a separate bus in every
    replica (and unwritable on a read-only root)."""
    if not rust_config(svc).has_events():
        for ov in overlays.values():
            labels = ov.workload(f"Deployment/{svc}").labels
            assert labels.get("emporium.io/nats-client") != "true", f"{svc} has no event bus but the NATS label"
        pytest.skip(f"{svc} has no event bus")
    up = svc.upper()
    for name, ov in overlays.items():
        w = ov.workload(f"Deployment/{svc}")
        c = w.containers(include_init=False)[0]
        env = ov.environment(w, c)
        assert env.get(f"EMPORIUM_{up}__EVENTS__BACKEND") == "nats", f"{name}/{svc}: EVENTS__BACKEND must be nats"
        assert not any(k.startswith(f"EMPORIUM_{up}__EVENTS__LOG__") for k in env), f"{name}/{svc}: no embedded log in a cluster"
        assert f"EMPORIUM_{up}__EVENTS__NATS__URL" not in env, f"{name}/{svc}: the NATS URL may carry credentials: a Secret file"
        ref = ov.mounted_file(w, c, env[f"EMPORIUM_{up}__EVENTS__NATS__URL_FILE"])
        assert ref and ref[0] == "Secret" and ref[1].startswith(f"{svc}-nats") and ref[2] == "url", f"{name}/{svc}: NATS URL from {ref}"
        assert w.labels.get("emporium.io/nats-client") == "true", f"{name}/{svc}: not labelled emporium.io/nats-client"


def test_event_services_agree_on_the_streams(overlay: Overlay):
    """Every service that connects creates or updates the same JetStream streams:
    their names, subjects and replicas must be the same everywhere."""
    seen: dict[str, dict] = {}
    for svc in deployed():
        if not rust_config(svc).has_events():
            continue
        env = _env_of(overlay, svc)
        prefix = f"EMPORIUM_{svc.upper()}__EVENTS__NATS__"
        seen[svc] = {k[len(prefix) :]: v for k, v in env.items() if k.startswith(prefix) and not k.startswith(prefix + "URL")}
    assert len({tuple(sorted(v.items())) for v in seen.values()}) <= 1, f"{overlay.name}: stream settings differ: {seen}"


# The mail server's stable in-cluster name: the ExternalName Service `smtp`
# (base/platform/service-smtp.yaml), which each overlay points at its server.
SMTP_SERVICE = "smtp"
SMTP_SERVICE_HOST = f"{SMTP_SERVICE}.emporium.svc.cluster.local"


@pytest.mark.parametrize("svc", sorted(deployed()))
def test_mail_goes_to_the_smtp_service_with_credentials_from_a_secret(svc, overlays):
    """A service that sends mail delivers it over SMTP in a cluster (the file
    mailer would write into one pod's scratch volume), to the server the `smtp`
    ExternalName names: by that Service's name, or by the name it points at
    (TLS checks the certificate against the name dialled), never a third one.
    Its login comes from its own Secret's files; a password that leaves the
    cluster travels under TLS; and one delivery fits the drain deadline, so a
    stop does not cut off the e-mail in hand (which would be sent twice)."""
    up = svc.upper()
    if not rust_config(svc).has_smtp():
        for ov in overlays.values():
            labels = ov.workload(f"Deployment/{svc}").labels
            assert labels.get("emporium.io/smtp-client") != "true", f"{svc} sends no mail but has the SMTP label"
        pytest.skip(f"{svc} sends no mail")
    mail = f"EMPORIUM_{up}__MAIL__"
    for name, ov in overlays.items():
        w = ov.workload(f"Deployment/{svc}")
        c = w.containers(include_init=False)[0]
        env = ov.environment(w, c)
        assert env.get(mail + "KIND") == "smtp", f"{name}/{svc}: MAIL__KIND must be smtp in a cluster"
        assert mail + "DIR" not in env, f"{name}/{svc}: MAIL__DIR is for the file mailer"
        server = ov.get("Service", SMTP_SERVICE)
        assert server is not None and server["spec"]["type"] == "ExternalName", f"{name}: no ExternalName Service {SMTP_SERVICE}"
        host = env.get(mail + "SMTP__HOST")
        assert host in (SMTP_SERVICE_HOST, server["spec"]["externalName"]), (
            f"{name}/{svc}: SMTP host {host!r} is neither {SMTP_SERVICE_HOST} nor the server it points at ({server['spec']['externalName']})"
        )
        assert (mail + "SMTP__PORT") in env, f"{name}/{svc}: set the SMTP port explicitly"
        for key in ("USERNAME", "PASSWORD"):
            assert mail + f"SMTP__{key}" not in env, f"{name}/{svc}: the SMTP {key.lower()} comes from a Secret file"
            ref = ov.mounted_file(w, c, env.get(mail + f"SMTP__{key}_FILE", ""))
            assert ref and ref[0] == "Secret" and ref[1].startswith(f"{svc}-smtp") and ref[2] == key.lower(), f"{name}/{svc}: SMTP {key.lower()} from {ref}"
        leaves = [call for call in ov.calls() if call.source == w.id and call.via == mail + "SMTP__HOST" and call.target.startswith("external:")]
        if leaves:
            assert env.get(mail + "SMTP__TLS") in ("starttls", "tls"), f"{name}/{svc}: the login leaves the cluster for {leaves[0].target}: SMTP__TLS must be starttls or tls"
        timeout = parse_duration(env.get(mail + "SMTP__TIMEOUT", "30s"))
        drain = parse_duration(env.get(f"EMPORIUM_{up}__SHUTDOWN__DRAIN_TIMEOUT", "20s"))
        assert timeout < drain, f"{name}/{svc}: SMTP timeout {timeout:g}s >= drain {drain:g}s: a stop would cut off the e-mail in hand"
        assert w.labels.get("emporium.io/smtp-client") == "true", f"{name}/{svc}: not labelled emporium.io/smtp-client"
