"""The services as the deployment tree and the Rust code describe them.

- `deployed()`: one `Service` per folder of deploy/k8s/base that configures an
  admin port (EMPORIUM_<SVC>__ADMIN_ADDR in its config.env): its settings
  (config.env, plus database.env for a service with a database) and ports.
- `launcher_services()`: every service `emporium serve` knows (the launcher's
  `Service` enum), i.e. every service that must be deployed.
- `RustConfig`: the configuration structs of a service (services/<svc>/src/
  config.rs and the chassis structs they embed), read from the source so the
  tests can check each EMPORIUM_… key against the struct the service
  deserializes it into (`deny_unknown_fields`: an unknown key fails the start),
  and find the service's upstreams and database.

Parsing Rust with regular expressions is deliberately shallow: it reads
`pub struct X { pub field: Type, … }` blocks and `SocketAddr::from(([0u16; 8],
PORT))` defaults, which is how every config.rs here is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "k8s" / "base"
# Shared config structs a service's config may embed (DatabaseConfig, Upstream,
# EventBusConfig, …).
SHARED = [
    REPO / "crates" / "chassis" / "src" / "config.rs",
    REPO / "crates" / "chassis" / "src" / "grpc.rs",
    REPO / "crates" / "chassis" / "src" / "client" / "mod.rs",
    REPO / "crates" / "chassis" / "src" / "client" / "discovery.rs",
    REPO / "crates" / "chassis" / "src" / "http_server.rs",
    REPO / "services" / "gateway" / "src" / "shed.rs",
    REPO / "services" / "gateway" / "src" / "cache.rs",
    REPO / "crates" / "eventbus" / "src" / "config.rs",
]
PROCESS_VARS = {"EMPORIUM_LOG", "EMPORIUM_LOG_FORMAT", "EMPORIUM_DATA_DIR", "EMPORIUM_CONFIG"}
SERVICE_VAR = re.compile(r"^EMPORIUM_([A-Z0-9]+)__([A-Z0-9_]+)$")


def read_env_file(path: Path) -> dict[str, str]:
    """A Kustomize/Docker env file: KEY=VALUE lines, # comments."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        out[key] = value
    return out


def port_of(addr: str) -> int:
    """The port of a listen address such as "[::]:50051"."""
    return int(addr.rsplit(":", 1)[1])


@dataclass
class Service:
    name: str
    folder: Path
    config: dict[str, str]
    database: dict[str, str]  # database.env; empty without a database

    @property
    def prefix(self) -> str:
        return f"EMPORIUM_{self.name.upper()}__"

    @property
    def settings(self) -> dict[str, str]:
        return {**self.config, **self.database}

    def get(self, key: str) -> str | None:
        """A setting by its key below the service prefix, e.g. "GRPC_ADDR"."""
        return self.settings.get(self.prefix + key)

    @property
    def grpc_port(self) -> int | None:
        addr = self.get("GRPC_ADDR")
        return port_of(addr) if addr else None

    @property
    def http_port(self) -> int | None:
        addr = self.get("HTTP_ADDR")
        return port_of(addr) if addr else None

    @property
    def has_database(self) -> bool:
        return bool(self.database)

    @property
    def grpc_service_name(self) -> str:
        """The name its gRPC health protocol reports besides "": emporium.<svc>.v1.<Svc>Service."""
        return f"emporium.{self.name}.v1.{self.name.capitalize()}Service"


@cache
def deployed() -> dict[str, Service]:
    out = {}
    for env in sorted(BASE.glob("*/config.env")):
        name = env.parent.name
        config = read_env_file(env)
        if f"EMPORIUM_{name.upper()}__ADMIN_ADDR" not in config:
            continue  # e.g. reports/: a CronJob's settings, no service
        db = env.parent / "database.env"
        out[name] = Service(name, env.parent, config, read_env_file(db) if db.exists() else {})
    return out


@cache
def launcher_services() -> list[str]:
    """The variants of `enum Service` in cmd/emporium/src/main.rs, lower-cased."""
    text = (REPO / "cmd" / "emporium" / "src" / "main.rs").read_text()
    m = re.search(r"enum Service \{(.*?)\}", text, re.S)
    assert m, "cmd/emporium/src/main.rs: no `enum Service`"
    return [v.lower() for v in re.findall(r"^\s*([A-Z][A-Za-z]*),", m[1], re.M)]


# -- the Rust side ---------------------------------------------------------------

STRUCT = re.compile(r"pub struct (\w+) \{(.*?)\n\}", re.S)
FIELD = re.compile(r"^\s*pub (\w+): (.+),\s*$", re.M)
WRAPPERS = re.compile(r"^(?:Option|Vec|Box)<(.+)>$")


# `#[serde(rename_all = "lowercase")] pub enum X { A, B }`: the values a setting
# of type X accepts ("a", "b"), for unit variants only.
ENUM = re.compile(r'#\[serde\(rename_all = "(lowercase|snake_case)"\)\]\s*pub enum (\w+) \{(.*?)\n\}', re.S)
VARIANT = re.compile(r"^\s*([A-Z]\w*),\s*$", re.M)


def _enums(path: Path) -> dict[str, list[str]]:
    text = path.read_text().split("#[cfg(test)]")[0]
    def rename(case: str, variant: str) -> str:
        return variant.lower() if case == "lowercase" else re.sub(r"(?<!^)([A-Z])", r"_\1", variant).lower()

    return {name: [rename(case, v) for v in VARIANT.findall(body)] for case, name, body in ENUM.findall(text)}


def _structs(path: Path) -> dict[str, dict[str, str]]:
    text = path.read_text()
    text = text.split("#[cfg(test)]")[0]
    return {name: dict(FIELD.findall(body)) for name, body in STRUCT.findall(text)}


def _base_type(rust_type: str) -> str:
    t = rust_type.strip()
    while m := WRAPPERS.match(t):
        t = m[1].strip()
    return t.split("::")[-1]


@dataclass
class RustConfig:
    service: str
    structs: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str = ""
    enums: dict[str, list[str]] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return f"{self.service.capitalize()}Config"

    def fields(self, struct: str | None = None) -> dict[str, str]:
        return self.structs[struct or self.root]

    def field_type(self, name: str, struct: str | None = None) -> str | None:
        t = self.fields(struct).get(name)
        return None if t is None else _base_type(t)

    def upstreams(self) -> list[str]:
        """Fields of type Upstream: the services this one calls over gRPC."""
        return [f for f, t in self.fields().items() if _base_type(t) == "Upstream"]

    def has_database(self) -> bool:
        return self.field_type("database") == "DatabaseConfig"

    def has_events(self) -> bool:
        """Publishes or consumes events (an `events: EventBusConfig` field)."""
        return self.field_type("events") == "EventBusConfig"

    def has_smtp(self) -> bool:
        """Sends mail and can deliver it over SMTP (notification: `mail.smtp`)."""
        return self.field_type("mail") == "MailConfig" and "smtp" in self.structs.get("MailConfig", {})

    def has_store_choice(self) -> bool:
        """cart: `store` chooses SQLite (local) or Redis (cluster)."""
        return self.field_type("store") == "StoreKind"

    def default_grpc_port(self) -> int | None:
        m = re.search(r"grpc_addr: SocketAddr::from\(\(\[0u16; 8\], (\d+)\)\)", self.source)
        return int(m[1]) if m else None

    def resolve(self, var: str) -> tuple[list[str], str] | str:
        """The field path and leaf type an EMPORIUM_<SVC>__… variable sets, or
        an error message when the service would reject it at start-up."""
        m = SERVICE_VAR.match(var)
        if not m or m[1].lower() != self.service:
            return f"{var} is not a setting of {self.service}"
        rest = m[2]
        if rest.endswith("_FILE"):  # the chassis reads the value from that file
            rest = rest[: -len("_FILE")]
        path = [p.lower() for p in rest.split("__")]
        struct = self.root
        for i, segment in enumerate(path):
            fields = self.structs.get(struct)
            if fields is None:
                return f"{var}: {'.'.join(path[:i])} is a {struct}, not a table"
            if segment not in fields:
                return f"{var}: {struct} has no field `{segment}` (fields: {', '.join(sorted(fields))})"
            struct = _base_type(fields[segment])
        if struct in self.structs:
            return f"{var}: `{'.'.join(path)}` is a table ({struct}); set one of its fields"
        return path, struct


@cache
def rust_config(service: str) -> RustConfig:
    path = REPO / "services" / service / "src" / "config.rs"
    structs: dict[str, dict[str, str]] = {}
    enums: dict[str, list[str]] = {}
    for p in SHARED:
        if p.exists():
            structs.update(_structs(p))
            enums.update(_enums(p))
    structs.update(_structs(path))
    enums.update(_enums(path))
    return RustConfig(service, structs, path.read_text(), enums)


def check_value(leaf: str, value: str, enums: dict[str, list[str]] | None = None) -> str | None:
    """Whether `value` deserializes as the leaf type (`enums`: the lower-cased
    unit enums of the service's config, e.g. SmtpTls); a message if not."""
    if enums and leaf in enums:
        if value not in enums[leaf]:
            return f"{value!r} is not one of {enums[leaf]} ({leaf})"
    elif leaf in ("Duration", "ConfigDuration"):
        if not re.fullmatch(r"\d+(?:\.\d+)?(ms|s|m|h)", value):
            return f"{value!r} is not a duration (250ms, 2s, 1m, 1h)"
    elif leaf in ("u8", "u16", "u32", "u64", "usize"):
        if not value.isdigit():
            return f"{value!r} is not a non-negative integer"
    elif leaf == "bool":
        if value not in ("true", "false"):
            return f"{value!r} is not true/false"
    elif leaf == "SocketAddr":
        if not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+):\d+", value):
            return f"{value!r} is not an ip:port socket address"
    return None
