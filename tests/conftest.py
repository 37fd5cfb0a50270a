"""Shared fixtures: a real nats-server, the fake device lab, and service processes.

Servers listen on free ports in temp dirs and are always stopped in teardown.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from loguru import logger
from nats.aio.client import Client

from service.device import prepare_process
from service.device.unicon_session import SessionOptions, UniconSessionFactory
from service.devtools.child import SERVE, ServiceProcess
from service.devtools.lab.runner import LabProcess
from service.devtools.local_server import LocalNatsServer, free_port
from tests import lab_sequences
from tests.mockdevice import cases as mockdevice_cases

SHARED_OUTPUTS = Path(
    os.environ.get("PYATS_DEVICE_OUTPUTS_DIR", Path(__file__).resolve().parents[2] / "shared" / "device-outputs")
)
LAB_PASSWORD = "lab-pass-7Q"
LAB_ENABLE = "lab-enable-3Z"

BANNER = (
    "**********************************************\n"
    "Router#\n"
    "switch>\n"
    "% Unauthorized access is prohibited\n"
    "core-1(config)#\n"
    "**********************************************"
)

RAW_OUTPUTS = {
    "show colours": "plain \x1b[31mred\x1b[0m 256:\x1b[38;5;196mX\x1b[0m true:\x1b[38;2;255;0;0mY\x1b[0m\x1b[2K end",
    "show edits": "abcdef\b\bXY\nsecond line",
    "show bytes": "ok \udcff\udcfe caf\u00e9 \u2713 \ufffd end",  # 0xff 0xfe are not UTF-8; the rest is
    "show split": "caf\udcc3\udca9 \udce2\udc9c\udc93 end",  # é and ✓ as raw bytes, one write per byte
}

# One lab for the whole run. Names say what each device is for.
LAB_DEVICES: list[dict[str, Any]] = [
    *({"name": f"fleet-{i:02d}", "os": "iosxe", "latency": 0.1} for i in range(20)),
    {"name": "ios-1", "os": "ios"},
    {"name": "iosxe-1", "os": "iosxe"},
    {"name": "nxos-1", "os": "nxos"},
    {"name": "iosxr-1", "os": "iosxr"},
    {"name": "asa-1", "os": "asa"},
    {"name": "iosxe-enable", "os": "iosxe", "enable_password": LAB_ENABLE},
    {"name": "asa-enable", "os": "asa", "enable_password": LAB_ENABLE},
    {"name": "locked", "os": "iosxe", "auth_failure": True},
    {"name": "hangs", "os": "iosxe", "hang_commands": ["show clock"]},
    {"name": "drops", "os": "iosxe", "disconnect_commands": ["show running-config"]},
    {"name": "slow", "os": "iosxe", "latency": 3.0},
    {"name": "paged", "os": "iosxe", "terminal_length": 24},
    # exactness: prompt-like lines, pauses, pieces, large outputs
    {"name": "banner-pause", "os": "iosxe", "pause_after": ["^Router#$"], "pause_seconds": 0.05},
    {"name": "pieces", "os": "iosxe", "chunk_size": 300, "chunk_delay": 0.02},
    {
        "name": "bulky",
        "os": "iosxe",
        "large_outputs": {
            "show logging": {"size": 1_000_000, "kind": "logging", "prompt_line": True},
            "show ip interface brief": {"size": 1_000_000, "kind": "ip-brief"},
        },
    },
    {"name": "one-line", "os": "iosxe", "max_sessions": 1, "latency": 0.1},
    {"name": "one-line-shared", "os": "iosxe", "max_sessions": 1, "latency": 0.1},  # device workers' own
    {"name": "slow-login", "os": "iosxe", "login_delay": 5.0},
    # read only up to a limit (tests/lab/test_exactness.py): it must be too big to read whole in time
    {"name": "tech", "os": "iosxe", "large_outputs": {"show tech-support": {"size": 20_000_000, "kind": "logging"}}},
    # read whole through the bus: 16x the offload threshold; 20 MB and more: ops/bench/large_output.py
    {"name": "tech-4mb", "os": "iosxe", "large_outputs": {"show tech-support": {"size": 4_000_000, "kind": "logging"}}},
    # real accounts: privilege 1 (no enable), AAA command authorization
    {"name": "priv1", "os": "iosxe", "login_privilege": 1},
    # login throttling: one connection before authentication at a time (MaxStartups 1)
    {"name": "throttled", "os": "iosxe", "max_startups": 1},
    {"name": "priv1-enable", "os": "iosxe", "login_privilege": 1, "enable_password": LAB_ENABLE},
    {"name": "priv1-ios", "os": "ios", "login_privilege": 1},
    {"name": "no-term-length", "os": "iosxe", "authorization_denied": ["^term(inal)? +len"]},
    {"name": "no-term-width", "os": "ios", "authorization_denied": ["^term(inal)? +wid"]},
    {"name": "aaa-no-run", "os": "iosxe", "authorization_denied": ["^show +run"]},
    # a prompt-like line inside an output, then a pause longer than any re-check
    {
        "name": "prompt-pause",
        "os": "iosxe",
        "large_outputs": {"show logging": {"size": 20_000, "kind": "logging", "prompt_line": True}},
        "pause_after": ["^{hostname}#$"],
        "pause_seconds": 0.3,
        # an output captured on another device, ending with that device's prompt
        "extra_outputs": {"show foreign": "Device ID    Local Intf\nr2           Gi1/0/1\n\nTotal: 1\n\nswitch#"},
    },
    {"name": "chatty", "os": "iosxe", "chatter_after": ["show clock"], "chatter_delay": 0.2},
    # banners that look like prompts and errors
    {"name": "bannered", "os": "iosxe", "motd": BANNER, "login_banner": BANNER},
    {"name": "bannered-user", "os": "ios", "motd": BANNER, "login_privilege": 1},
    # outputs as the device sends them: colours, backspaces, bytes that are not UTF-8, split characters
    {"name": "raw-text", "os": "iosxe", "extra_outputs": RAW_OUTPUTS, "chunk_size": 1, "chunk_delay": 0.002},
    # an old IOS image: SHA-1 key exchange, ssh-rsa host key, CBC ciphers only
    {"name": "legacy-ios", "os": "ios", "legacy_only": True},
    {
        "name": "legacy-group1-3des",
        "os": "ios",
        "kex_algs": ["diffie-hellman-group1-sha1"],
        "host_key_algs": ["ssh-rsa"],
        "encryption_algs": ["3des-cbc"],
    },
    # behind an AAA server: keyboard-interactive only, no password method
    {"name": "aaa-kbdint-only", "os": "iosxe", "auth_methods": ["keyboard-interactive"]},
]


def corpus_pairs() -> list[dict[str, Any]]:
    """Every pair of ../shared/device-outputs, or none when the folder is absent."""
    index = SHARED_OUTPUTS / "index.json"
    if not index.is_file():
        return []
    pairs = json.loads(index.read_text())
    entries = pairs if isinstance(pairs, list) else pairs.get("pairs", [])
    found = []
    for entry in entries:
        folder = SHARED_OUTPUTS / entry["path"]
        if (folder / "meta.json").is_file():
            meta = json.loads((folder / "meta.json").read_text())
            found.append(
                {"name": f"corpus-{len(found):02d}", "os": meta["os"], "command": meta["command"], "folder": folder}
            )
    return found


CORPUS = corpus_pairs()
# answers that change from run to run (tests/bus/test_changes.py), one device per test
LAB_DEVICES += [
    {"name": "chg-bgp", "os": "iosxe", "sequence_outputs": {"show ip bgp summary": lab_sequences.BGP_RUNS}},
    {"name": "chg-redo", "os": "iosxe", "sequence_outputs": {"show ip bgp summary": lab_sequences.BGP_RUNS}},
    {"name": "chg-version", "os": "iosxe", "sequence_outputs": lab_sequences.version_sequence("chg-version")},
    {"name": "chg-raw", "os": "iosxe", "sequence_outputs": {"show widget status": lab_sequences.WIDGET_RUNS}},
    {"name": "chg-auth", "os": "iosxe", "sequence_outputs": {"show ip bgp summary": lab_sequences.BGP_RUNS}},
    {"name": "chg-tick", "os": "iosxe", "sequence_outputs": {"show ip bgp summary": lab_sequences.BGP_RUNS}},
]
LAB_DEVICES += [{"name": c["name"], "os": c["os"], "outputs_dir": str(c["folder"])} for c in CORPUS]
# Cisco's Unicon mock devices behind the lab's SSH (tests/mockdevice), where unicon ships them;
# in the same lab so that the read-only proof reads their lines too.
LAB_DEVICES += mockdevice_cases.lab_devices()


# The tiers of DESIGN.md ("Test layers"); every test is in exactly one (pyproject.toml declares them).
TIERS = ("unit", "lab", "bus", "mockdevice", "tooling", "integration")


def tier_problems(items: list[pytest.Item]) -> list[str]:
    """Each test that has no tier marker or more than one."""
    problems = []
    for item in items:
        tiers = [name for name in TIERS if item.get_closest_marker(name)]
        if len(tiers) != 1:
            problems.append(f"{item.nodeid}: {tiers or 'no tier'}")
    return problems


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test has exactly one tier; the read-only proof reads the lab log after every other
    test has used the lab."""
    problems = tier_problems(items)
    if problems:
        shown = "\n  ".join(problems[:20])
        raise pytest.UsageError(f"each test needs exactly one tier marker of {TIERS}:\n  {shown}")
    proof = [item for item in items if item.get_closest_marker("readonly_proof")]
    rest = [item for item in items if not item.get_closest_marker("readonly_proof")]
    items[:] = rest + proof


class TierViolationError(AssertionError):
    """A unit test reached for a subprocess or the network."""


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test itself failed (the unit guard then does not report it twice)."""
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


def _refuse_io(monkeypatch: pytest.MonkeyPatch, attempts: list[str]) -> None:
    """Make subprocess starts and IPv4/IPv6 sockets raise (and note the attempt)."""

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise TierViolationError(f"a unit test may not {what}: give it another tier (TIERS in tests/conftest.py)")

        return refused

    def inet_only(name: str) -> Callable[..., Any]:
        real = getattr(socket.socket, name)

        def guarded(sock: socket.socket, *args: Any, **kwargs: Any) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                refuse(f"open a network socket (socket.{name})")()
            return real(sock, *args, **kwargs)

        return guarded

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("start a subprocess (subprocess.Popen)"))
    for name in ("create_subprocess_exec", "create_subprocess_shell"):
        monkeypatch.setattr(asyncio, name, refuse(f"start a subprocess (asyncio.{name})"))
    for name in ("system", "posix_spawn", "posix_spawnp", "fork", "forkpty"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse(f"start a subprocess (os.{name})"))
    for name in ("connect", "connect_ex", "bind", "sendto"):
        monkeypatch.setattr(socket.socket, name, inet_only(name))


@pytest.fixture(autouse=True)
def unit_tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A unit test fails as soon as it starts a subprocess or opens a network socket (IPv4/IPv6;
    the event loop's own socket pair is fine). The attempt raises where it happens and fails the
    test in teardown too, in case the code under test swallowed the error."""
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    attempts: list[str] = []
    _refuse_io(monkeypatch, attempts)
    yield
    if attempts and not request.node.stash.get(CALL_FAILED, False):
        pytest.fail(f"a unit test tried to {attempts[0]}", pytrace=False)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    folder = tmp_path_factory.mktemp("lab")
    spec = folder / "spec.json"
    spec.write_text(json.dumps({"defaults": {"password": LAB_PASSWORD}, "devices": LAB_DEVICES}))
    with LabProcess(["--spec", str(spec)], log_path=folder / "lab.jsonl") as running:
        yield running


@pytest.fixture(scope="session")
def lab_device(lab: LabProcess) -> Callable[[str], dict[str, Any]]:
    by_name = {d["name"]: d for d in lab.devices}

    def find(name: str) -> dict[str, Any]:
        return by_name[name]

    return find


def wire_device(entry: dict[str, Any], password: str = LAB_PASSWORD, **extra: Any) -> dict[str, Any]:
    """A request's device entry for a lab device."""
    return {
        "hostname": entry["host"],
        "port": entry["port"],
        "os": entry["os"],
        "username": "admin",
        "password": password,
        **extra,
    }


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNatsServer]:
    server = LocalNatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# /readyz of a ready service with device workers and JetStream
READY_CHECKS = {
    "nats_connected": True,
    "serving": True,
    "pool": True,
    "parsers": True,
    "workers": True,
    "jetstream": True,
}


def serve_until_exit(settings: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``pyats-ro serve`` with only these ``PYATS_*`` settings, run until it exits (start-up refusals)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYATS_")}
    env.update(settings)
    return subprocess.run(SERVE, env=env, capture_output=True, text=True, timeout=timeout, check=False)


async def wait_for_services(url: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Ping ``$SRV.PING.pyats-ro`` until ``count`` instances answer."""
    import nats

    client = await nats.connect(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inbox = client.new_inbox()
            replies: list[dict[str, Any]] = []

            async def collect(msg: Any, replies: list[dict[str, Any]] = replies) -> None:
                if msg.data:  # a no-responders status has no body
                    replies.append(json.loads(msg.data))

            sub = await client.subscribe(inbox, cb=collect)
            await client.publish("$SRV.PING.pyats-ro", b"", reply=inbox)
            await asyncio.sleep(0.3)
            await sub.unsubscribe()
            if len(replies) >= count:
                return replies
        raise TimeoutError(f"fewer than {count} service instances answered $SRV.PING")
    finally:
        await client.close()


@pytest.fixture(scope="session")
def service_factory(
    nats_server: LocalNatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    started: list[ServiceProcess] = []

    def start(**settings: str) -> ServiceProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYATS_")}
        env.update(
            {
                "PYATS_NATS_URL": nats_server.url,
                "PYATS_METRICS_PORT": str(free_port()),
                "PYATS_METRICS_HOST": "127.0.0.1",
                "PYATS_SSH_STRICT_HOST_KEY_CHECKING": "no",
                "PYATS_CONNECT_RETRIES": "0",
                "PYATS_PARSER_PREWARM": "iosxe:show version",
                "PYATS_LOG_LEVEL": "DEBUG",
                "PYATS_SHUTDOWN_GRACE": "5",
                "PYATS_RATE_LIMIT_REQUESTS": "0",  # rate limits have their own tests; the corpus sends 66 requests
                # one device worker, not one per core: each loads pyATS and Genie at start, and
                # the tests that need more ask for them (tests/bus/test_device_workers.py)
                "PYATS_DEVICE_WORKERS": "1",
                # each service its own device workers: tests start services with different device settings
                "PYATS_WORKER_GROUP": f"test{len(started)}",
            }
        )
        env.update(settings)
        if "PYATS_SUBJECT_PREFIX" in settings:  # each prefix gets its own streams
            tag = settings["PYATS_SUBJECT_PREFIX"].replace(".", "_").replace("-", "_").upper()
            env.setdefault("PYATS_RESULTS_STREAM", f"RESULTS_{tag}")
            env.setdefault("PYATS_JOBS_STREAM", f"JOBS_{tag}")
            env.setdefault("PYATS_SCHEDULES_BUCKET", f"SCHEDULES_{tag}")
            env.setdefault("PYATS_SCHEDULES_STATE_BUCKET", f"SCHEDULE_TICKS_{tag}")
            env.setdefault("PYATS_SCHEDULES_STREAM", f"TICKS_{tag}")
            env.setdefault("PYATS_CHANGES_STREAM", f"CHANGES_{tag}")
            env.setdefault("PYATS_CHANGES_BUCKET", f"BASELINES_{tag}")
        process = ServiceProcess(env, logs / f"service-{len(started)}.log")
        process.start()
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:  # all at once: each takes a moment to shut down
            process.begin_stop()
        for process in started:
            process.stop()


@pytest.fixture(scope="session")
def service(service_factory: Callable[..., ServiceProcess], nats_server: LocalNatsServer) -> ServiceProcess:
    """The shared service instance most bus tests talk to."""
    return service_factory(PYATS_MAX_PAYLOAD_BYTES="65536", PYATS_MAX_DEVICES_PER_REQUEST="40").wait_ready()


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """The service's WARNING (and worse) log messages while the test runs."""
    seen: list[str] = []
    sink = logger.add(lambda message: seen.append(str(message)), level="WARNING", format="{message}")
    try:
        yield seen
    finally:
        logger.remove(sink)


@pytest_asyncio.fixture
async def client(nats_server: LocalNatsServer) -> AsyncIterator[Client]:
    """A plain NATS client of the session's nats-server (no auth)."""
    connection = await nats.connect(nats_server.url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture(scope="session", autouse=True)
def device_process() -> None:
    """What the service and its workers do at start-up; tests build device layers themselves."""
    prepare_process()


@pytest.fixture(scope="session", params=["pty", "paramiko"])
def factory(request: pytest.FixtureRequest) -> Iterator[UniconSessionFactory]:
    """Every device-layer test runs on both SSH backends."""
    built = UniconSessionFactory(SessionOptions(strict_host_key_checking="no", backend=request.param))
    yield built
    built.close()
