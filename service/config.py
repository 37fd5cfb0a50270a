"""Settings, built once at start-up from the environment and ``.env`` (variables ``PYATS_*``).

``Settings`` is made of sections (``settings.nats.url``, ``settings.jobs.ack_wait``), each a
model whose docstring is its title and introduction in docs/CONFIGURATION.md, and whose
fields are each named by their environment variable (``validation_alias``). Those names
are the interface: pydantic-settings reads each section's variables from the environment
and the ``.env`` file, and service/devtools/config_docs.py writes CONFIGURATION.md's
tables and .env.example from these classes alone. Grouped views (``limits()``,
``timeouts.by_phase()``, ...) hand each layer only what it needs,
so nothing reads settings from a global.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service.contract.errors import ConfigError, ErrorCode
from service.domain.legacy_ssh import LEGACY_ALGORITHMS, parse_legacy_algorithms
from service.domain.models import FREE_TEXT_PREFIXES, DeviceOS, Timeouts
from service.domain.policy import Limits
from service.domain.replies import REQUESTER_FIELD, ReplyRule, well_formed
from service.domain.requester_policy import RateRule
from service.domain.ssh import HostKeyPolicy, SshBackend

ENV_PREFIX = "PYATS_"


# --- choices ---


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    """loguru's levels; any case is accepted."""

    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

    @classmethod
    def _missing_(cls, value: object) -> LogLevel | None:
        return cls.__members__.get(value.upper()) if isinstance(value, str) else None


class ChangeScope(StrEnum):
    ALL = "all"
    SCHEDULED = "scheduled"


class StreamStorage(StrEnum):
    FILE = "file"
    MEMORY = "memory"


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


# a comma-separated variable: pydantic-settings hands over the string (NoDecode), split here
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]


def _check_stream_name(value: str) -> str:
    if not value or any(c in value for c in " .*>\t/"):
        raise ValueError("must be a stream name without spaces, dots, '*', '>' or '/'")
    return value


def _check_token(value: str) -> str:
    if not value or any(c in value for c in " .*>\t"):
        raise ValueError("must be one token without spaces, dots, '*' or '>'")
    return value


StreamName = Annotated[str, AfterValidator(_check_stream_name)]
Token = Annotated[str, AfterValidator(_check_token)]  # one subject token


class Section(BaseModel):
    """Base of the sections. A section's docstring is its title (first line) and introduction
    (the rest) in docs/CONFIGURATION.md; each field names its environment variable in
    ``validation_alias`` and says what it does in ``description``."""

    # No validation by field name: pydantic-settings would then also read variables named
    # like the bare fields (USER, URL). Sections are only ever built from variable names.
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if not (cls.__dict__.get("__doc__") or "").strip():
            raise TypeError(f"{cls.__name__} needs a docstring: its title and introduction in the docs")
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if not (isinstance(alias, str) and alias.startswith(ENV_PREFIX) and alias == alias.upper()):
                raise TypeError(f"{cls.__name__}.{name} needs validation_alias='{ENV_PREFIX}...' (its variable)")
            if not field.description:
                raise TypeError(f"{cls.__name__}.{name} needs a description")


# --- the sections, in the order of the docs ---


class NatsSettings(Section):
    """NATS connection

    Where the service connects and how it logs in. Every process of the service (front and
    device workers) opens its connections with these settings.
    """

    url: CommaList = Field(
        default=["nats://127.0.0.1:4222"],
        validation_alias="PYATS_NATS_URL",
        description="NATS server URL(s), comma-separated for a cluster.",
    )
    user: str | None = Field(default=None, validation_alias="PYATS_NATS_USER", description="NATS user name.")
    password: SecretStr | None = Field(
        default=None, validation_alias="PYATS_NATS_PASSWORD", description="NATS password."
    )
    token: SecretStr | None = Field(default=None, validation_alias="PYATS_NATS_TOKEN", description="NATS token.")
    credentials_file: Path | None = Field(
        default=None,
        validation_alias="PYATS_NATS_CREDENTIALS_FILE",
        description="NATS .creds file (JWT + nkey seed).",
    )
    nkey_seed_file: Path | None = Field(
        default=None,
        validation_alias="PYATS_NATS_NKEY_SEED_FILE",
        description="File holding the NATS user nkey seed (SU...), for nkey authentication.",
    )
    tls_ca: Path | None = Field(
        default=None,
        validation_alias="PYATS_NATS_TLS_CA",
        description="CA bundle that signed the NATS server certificate.",
    )
    tls_cert: Path | None = Field(
        default=None, validation_alias="PYATS_NATS_TLS_CERT", description="Client certificate for mutual TLS."
    )
    tls_key: Path | None = Field(
        default=None, validation_alias="PYATS_NATS_TLS_KEY", description="Private key of the client certificate."
    )
    connect_timeout: float = Field(
        default=5.0,
        gt=0,
        validation_alias="PYATS_NATS_CONNECT_TIMEOUT",
        description="Seconds to wait for each NATS connect attempt.",
    )
    startup_wait: float = Field(
        default=30.0,
        gt=0,
        validation_alias="PYATS_NATS_STARTUP_WAIT",
        description="Seconds start-up waits for NATS before giving up with an error.",
    )
    max_reconnect_attempts: int = Field(
        default=-1,
        ge=-1,
        validation_alias="PYATS_NATS_MAX_RECONNECT_ATTEMPTS",
        description="Reconnect attempts after a lost connection (-1: forever).",
    )

    @field_validator("url")
    @classmethod
    def _check_urls(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one NATS URL is required")
        for url in value:
            if "://" not in url:
                raise ValueError(f"{url!r} is not a URL like nats://host:4222")
        return value

    @property
    def logs_in(self) -> bool:
        """The service authenticates to NATS (a login, a token, credentials or a client certificate)."""
        logins = (self.user, self.token, self.credentials_file, self.nkey_seed_file)
        return any(logins) or self.tls_cert is not None


class BusSettings(Section):
    """Subjects and replies

    The subjects the service listens on, the queue group its replicas share, its name in
    nats.micro discovery, and where replies may go.
    """

    subject_prefix: str = Field(
        default="pyats.v1",
        validation_alias="PYATS_SUBJECT_PREFIX",
        description="Prefix of every subject the service listens on.",
    )
    queue_group: Token = Field(
        default="pyats-ro", validation_alias="PYATS_QUEUE_GROUP", description="Queue group shared by all replicas."
    )
    service_name: Token = Field(
        default="pyats-ro",
        validation_alias="PYATS_SERVICE_NAME",
        description="nats.micro service name ($SRV.PING/INFO/STATS).",
    )
    reply_inbox: str = Field(
        default="auto",
        validation_alias="PYATS_REPLY_INBOX",
        description=(
            "Subject prefix replies may go to; {requester} stands for the requester's token. auto: "
            "_INBOX.{requester} when the service logs in to NATS (the shipped permissions), else _INBOX. "
            "A request whose reply subject lies elsewhere is dropped unanswered (reply_forbidden)."
        ),
    )
    trust_request_info: bool = Field(
        default=False,
        validation_alias="PYATS_TRUST_REQUEST_INFO",
        description=(
            "Take the requester from the Nats-Request-Info header that nats-server sets on requests from "
            "another account (service imports), and allow their _R_.> reply subjects. Only for deployments "
            "where no requester shares the service's account: within one account the header can be forged."
        ),
    )

    @field_validator("subject_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        tokens = value.split(".")
        if not value or any(not t or any(c in t for c in " *>\t") for t in tokens):
            raise ValueError("must be dot-separated tokens without spaces, '*' or '>'")
        return value

    @field_validator("reply_inbox")
    @classmethod
    def _check_reply_inbox(cls, value: str) -> str:
        if value == "auto":
            return value
        probe = value.replace(REQUESTER_FIELD, "requester")
        if REQUESTER_FIELD in value.replace(REQUESTER_FIELD, "", 1) or not well_formed(probe):
            raise ValueError("must be auto or dot-separated tokens such as _INBOX.{requester}, without '*' or '>'")
        return value


class ResultsSettings(Section):
    """Results in JetStream

    Every device result is published on its own subject and, with JetStream, kept in a
    stream for replay (``pyats-ro history``); large outputs go to an object store with the
    same age and storage.
    """

    jetstream: bool = Field(
        default=True,
        validation_alias="PYATS_JETSTREAM_ENABLED",
        description="Keep results in a JetStream stream for replay (without JetStream: published only).",
    )
    stream: StreamName = Field(
        default="PYATS_RESULTS",
        validation_alias="PYATS_RESULTS_STREAM",
        description="Name of the JetStream stream holding results.",
    )
    max_age: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        validation_alias="PYATS_RESULTS_MAX_AGE",
        description="Seconds results are kept (default 7 days).",
    )
    max_bytes: int = Field(
        default=-1,
        ge=-1,
        validation_alias="PYATS_RESULTS_MAX_BYTES",
        description="Largest size of the results stream in bytes (-1: no limit).",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        validation_alias="PYATS_RESULTS_REPLICAS",
        description="Replicas of the results stream (clustered JetStream).",
    )
    duplicate_window: float = Field(
        default=120.0,
        gt=0,
        validation_alias="PYATS_RESULTS_DUPLICATE_WINDOW",
        description="Seconds within which a result with the same Nats-Msg-Id is dropped as a duplicate.",
    )
    storage: StreamStorage = Field(
        default=StreamStorage.FILE,
        validation_alias="PYATS_RESULTS_STORAGE",
        description="Storage of the results stream: file or memory.",
    )
    buffer: int = Field(
        default=10_000,
        ge=1,
        validation_alias="PYATS_RESULTS_BUFFER",
        description="Results held for publishing while NATS is away; beyond it the oldest are dropped.",
    )


class JobsSettings(Section):
    """Durable jobs

    Requests sent as jobs to ``<prefix>.jobs.<requester>`` wait in a JetStream work-queue
    stream until a replica takes them; a replica that dies mid-job leaves it to another.
    """

    enabled: bool = Field(
        default=True,
        validation_alias="PYATS_JOBS_ENABLED",
        description="Take durable jobs from <prefix>.jobs.<requester> (needs JetStream).",
    )
    stream: StreamName = Field(
        default="PYATS_JOBS",
        validation_alias="PYATS_JOBS_STREAM",
        description="Name of the work-queue stream holding jobs.",
    )
    ack_wait: float = Field(
        default=30.0,
        gt=0,
        validation_alias="PYATS_JOBS_ACK_WAIT",
        description="Seconds without progress after which a job goes to another replica.",
    )
    max_deliver: int = Field(
        default=5,
        ge=1,
        validation_alias="PYATS_JOBS_MAX_DELIVER",
        description="Deliveries of one job before it is given up.",
    )
    concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        validation_alias="PYATS_JOBS_CONCURRENCY",
        description="Jobs one replica works on at the same time.",
    )


class SchedulesSettings(Section):
    """Schedules

    Polling definitions kept in a NATS KV bucket and managed with ``pyats-ro schedule``
    (through ``<prefix>.schedules.<requester>``). Every replica watches the bucket; each
    tick is enqueued once across replicas (JetStream de-duplication on the schedule and tick
    time) and run once by one replica, like a durable job (docs/SCHEDULES.md).
    """

    enabled: bool = Field(
        default=True,
        validation_alias="PYATS_SCHEDULES_ENABLED",
        description="Run schedules and answer <prefix>.schedules.<requester> (needs JetStream).",
    )
    bucket: StreamName = Field(
        default="PYATS_SCHEDULES",
        validation_alias="PYATS_SCHEDULES_BUCKET",
        description="KV bucket of the schedule definitions (key: the schedule's requester and name).",
    )
    state_bucket: StreamName = Field(
        default="PYATS_SCHEDULE_TICKS",
        validation_alias="PYATS_SCHEDULES_STATE_BUCKET",
        description="KV bucket of each schedule's last tick taken or reported missed.",
    )
    stream: StreamName = Field(
        default="PYATS_TICKS",
        validation_alias="PYATS_SCHEDULES_STREAM",
        description="Work-queue stream of enqueued ticks (de-duplicated per schedule and tick).",
    )
    catch_up: float = Field(
        default=30.0,
        ge=0,
        validation_alias="PYATS_SCHEDULES_CATCH_UP",
        description=(
            "A tick found due up to this many seconds ago (no replica was running at its time) still runs, "
            "counted late; older ones are reported missed, never run in a burst."
        ),
    )
    late_after: float = Field(
        default=10.0,
        gt=0,
        validation_alias="PYATS_SCHEDULES_LATE_AFTER",
        description="A tick that starts this many seconds after its due time (plus jitter) is counted late.",
    )
    min_interval: float = Field(
        default=10.0,
        gt=0,
        validation_alias="PYATS_SCHEDULES_MIN_INTERVAL",
        description="Shortest interval a schedule may have (cron's is 60 s).",
    )
    max_per_requester: int = Field(
        default=50,
        ge=1,
        validation_alias="PYATS_SCHEDULES_MAX_PER_REQUESTER",
        description="Schedules one requester may keep.",
    )
    max_devices: int = Field(
        default=2000,
        ge=1,
        validation_alias="PYATS_SCHEDULES_MAX_DEVICES",
        description=(
            "Devices one schedule may poll (its groups and globs expanded); instead of PYATS_MAX_DEVICES_PER_REQUEST, "
            "which bounds one interactive request."
        ),
    )
    concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        validation_alias="PYATS_SCHEDULES_CONCURRENCY",
        description="Ticks one replica runs at the same time.",
    )


class ChangesSettings(Section):
    """Change events

    Each new (device, command) result is compared with the previous one of the same requester;
    when they differ, once volatile fields (uptimes, counters, ages, timestamps) are ignored, a
    change event goes to ``<prefix>.changes.<requester>.<device>`` and is kept in its own stream.
    """

    enabled: bool = Field(
        default=True,
        validation_alias="PYATS_CHANGES_ENABLED",
        description="Compare results and publish change events (needs JetStream).",
    )
    scope: ChangeScope = Field(
        default=ChangeScope.ALL,
        validation_alias="PYATS_CHANGES_SCOPE",
        description="Which results are compared: every stored result, or only those of schedule ticks.",
    )
    stream: StreamName = Field(
        default="PYATS_CHANGES",
        validation_alias="PYATS_CHANGES_STREAM",
        description="Stream keeping change events.",
    )
    bucket: StreamName = Field(
        default="PYATS_BASELINES",
        validation_alias="PYATS_CHANGES_BUCKET",
        description="KV bucket of the last compared form of each requester's (device, command).",
    )
    max_age: float = Field(
        default=30 * 86400.0,
        gt=0,
        validation_alias="PYATS_CHANGES_MAX_AGE",
        description="Seconds change events (and unused baselines) are kept.",
    )
    rules_file: Path | None = Field(
        default=None,
        validation_alias="PYATS_CHANGES_RULES_FILE",
        description="YAML or JSON file of extra volatile-field rules, tried before the shipped ones.",
    )
    max_paths: int = Field(
        default=500,
        ge=1,
        validation_alias="PYATS_CHANGES_MAX_PATHS",
        description="Paths or lines one change event lists before it is marked truncated.",
    )


class RequestLimits(Section):
    """Request limits

    Checked before any device is touched.
    """

    max_devices: int = Field(
        default=500,
        ge=1,
        validation_alias="PYATS_MAX_DEVICES_PER_REQUEST",
        description="Devices allowed in one request.",
    )
    max_commands: int = Field(
        default=50,
        ge=1,
        validation_alias="PYATS_MAX_COMMANDS_PER_REQUEST",
        description="Commands allowed in one request.",
    )
    max_payload_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        validation_alias="PYATS_MAX_PAYLOAD_BYTES",
        description="Largest request payload accepted, in bytes.",
    )
    max_command_length: int = Field(
        default=512,
        ge=16,
        validation_alias="PYATS_MAX_COMMAND_LENGTH",
        description="Longest command line (command plus pipe) accepted.",
    )


class PolicySettings(Section):
    """Rate limits and requester policy

    Each requester has its own rate limits; the policy file can give requesters their own
    rules.
    """

    rate_limit_requests: int = Field(
        default=60,
        ge=0,
        validation_alias="PYATS_RATE_LIMIT_REQUESTS",
        description="Requests each requester may send per period (0: unlimited).",
    )
    rate_limit_devices: int = Field(
        default=5000,
        ge=0,
        validation_alias="PYATS_RATE_LIMIT_DEVICES",
        description="Devices each requester may ask for per period, summed over requests (0: unlimited).",
    )
    rate_limit_period: float = Field(
        default=60.0, gt=0, validation_alias="PYATS_RATE_LIMIT_PERIOD", description="Rate-limit period in seconds."
    )
    file: Path | None = Field(
        default=None,
        validation_alias="PYATS_POLICY_FILE",
        description="YAML file of per-requester rules: allow/deny regexes, max devices, rates, redaction.",
    )
    redact_outputs: bool = Field(
        default=True,
        validation_alias="PYATS_REDACT_OUTPUTS",
        description="Redact secrets (passwords, keys, communities, hashes) from outputs by default.",
    )

    def rate_rule(self) -> RateRule:
        return RateRule(
            requests=self.rate_limit_requests, devices=self.rate_limit_devices, period=self.rate_limit_period
        )


class TimeoutSettings(Section):
    """Timeouts

    Deadlines in seconds, from one device's login to a whole request.
    """

    connect: float = Field(
        default=30.0,
        gt=0,
        validation_alias="PYATS_CONNECT_TIMEOUT",
        description="Deadline for SSH login to one device.",
    )
    command_default: float = Field(
        default=30.0,
        gt=0,
        validation_alias="PYATS_COMMAND_TIMEOUT_DEFAULT",
        description="Per-command deadline when the request gives no timeout.",
    )
    command_max: float = Field(
        default=300.0,
        gt=0,
        validation_alias="PYATS_COMMAND_TIMEOUT_MAX",
        description="Largest per-command timeout a request may ask for.",
    )
    device: float = Field(
        default=600.0,
        gt=0,
        validation_alias="PYATS_DEVICE_TIMEOUT",
        description="Deadline for all work on one device (login and every command).",
    )
    queue: float = Field(
        default=300.0,
        gt=0,
        validation_alias="PYATS_QUEUE_TIMEOUT",
        description="Longest a device may wait for a free worker (else queue_timeout).",
    )
    request: float = Field(
        default=900.0,
        gt=0,
        validation_alias="PYATS_REQUEST_TIMEOUT",
        description="Deadline for a whole request; devices not started by then fail (request_timeout).",
    )

    def by_phase(self, command: float | None = None) -> Timeouts:
        """The device work's deadlines; ``command``: a request's own per-command timeout."""
        return Timeouts(
            connect=self.connect,
            command=command if command is not None else self.command_default,
            device=self.device,
        )


class ConcurrencySettings(Section):
    """Concurrency

    How much device work runs at once, and how fast new SSH logins are opened.
    """

    max_concurrent_devices: int = Field(
        default=50,
        ge=1,
        le=1000,
        validation_alias="PYATS_MAX_CONCURRENT_DEVICES",
        description="Worker threads shared by all requests.",
    )
    max_parallel_per_request: int = Field(
        default=50,
        ge=1,
        validation_alias="PYATS_MAX_PARALLEL_PER_REQUEST",
        description="Devices of one request worked on at the same time (requests share fairly).",
    )
    max_sessions_per_device: int = Field(
        default=1,
        ge=1,
        le=16,
        validation_alias="PYATS_MAX_SESSIONS_PER_DEVICE",
        description="Concurrent SSH sessions to one host:port (devices have few VTY lines).",
    )
    login_rate_per_second: float = Field(
        default=20.0,
        ge=0,
        validation_alias="PYATS_LOGIN_RATE_PER_SECOND",
        description="New SSH logins per second across the service (0: unlimited).",
    )


class WorkerSettings(Section):
    """Device workers

    ``pyats-ro serve`` is a front that takes requests and device worker processes that do
    the device work; fronts and workers find each other through NATS.
    """

    count: int | None = Field(
        default=None,
        ge=0,
        le=256,
        validation_alias="PYATS_DEVICE_WORKERS",
        description=(
            "Device worker processes 'pyats-ro serve' starts beside the front (empty: one per CPU core; 0: none, the "
            "device work runs in the front's own process unless external_workers is set)."
        ),
    )
    external: bool = Field(
        default=False,
        validation_alias="PYATS_EXTERNAL_WORKERS",
        description="Send device work to workers started elsewhere ('pyats-ro worker'), even with no local ones.",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        validation_alias="PYATS_WORKER_THREADS",
        description=(
            "Most devices one worker process works on at once (empty: max_concurrent_devices); below it the worker "
            "keeps as many as its CPU can serve, and the rest wait, served fairly across requests."
        ),
    )
    group: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        validation_alias="PYATS_WORKER_GROUP",
        description=(
            "Fronts and workers of one group share the workers (and so each device's warm session); a replica with "
            "other device settings needs its own group."
        ),
    )
    heartbeat: float = Field(
        default=1.0,
        gt=0,
        le=30,
        validation_alias="PYATS_WORKER_HEARTBEAT",
        description="Seconds between a worker's heartbeats; 3 missed and its devices move.",
    )
    wait: float = Field(
        default=30.0,
        ge=0,
        validation_alias="PYATS_WORKER_WAIT",
        description="Longest a device waits for a device worker to be running (else service_unavailable).",
    )

    def processes(self) -> int:
        """How many device worker processes ``serve`` starts."""
        if self.count is not None:
            return self.count
        # the cores this process may run on (a container pinned with --cpuset-cpus sees its own)
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    @property
    def enabled(self) -> bool:
        """Device work goes to worker processes (local or external), not this process's threads."""
        return self.processes() > 0 or self.external


class SessionSettings(Section):
    """Warm sessions

    A device's SSH session stays open after use, so the next request for it skips the login.
    """

    idle_ttl: float = Field(
        default=60.0,
        ge=0,
        validation_alias="PYATS_SESSION_IDLE_TTL",
        description="Seconds a device session stays open for reuse after use (0: close at once).",
    )
    max_warm: int = Field(
        default=1000,
        ge=0,
        validation_alias="PYATS_MAX_WARM_SESSIONS",
        description="Cap on idle warm sessions; the least recently used close first.",
    )


class InventorySettings(Section):
    """Inventory

    Devices known by name, so requests can name devices or groups instead of carrying
    addresses and credentials.
    """

    file: Path | None = Field(
        default=None,
        validation_alias="PYATS_INVENTORY_FILE",
        description="pyATS testbed YAML naming devices, so requests can use 'name' or 'group'.",
    )
    allow_inline_credentials: bool = Field(
        default=True,
        validation_alias="PYATS_ALLOW_INLINE_CREDENTIALS",
        description="Accept device credentials inside requests (false: inventory devices only).",
    )
    poll_interval: float = Field(
        default=2.0,
        ge=0,
        validation_alias="PYATS_INVENTORY_POLL_INTERVAL",
        description="Seconds between checks of the inventory file for changes (0: SIGHUP only).",
    )


class RetrySettings(Section):
    """Connection retries

    A login that is refused or times out is tried again; an authentication failure never is.
    """

    count: int = Field(
        default=2,
        ge=0,
        le=10,
        validation_alias="PYATS_CONNECT_RETRIES",
        description="Extra login attempts after a refused or timed-out connect (never after an auth failure).",
    )
    delay: float = Field(
        default=1.0,
        ge=0,
        validation_alias="PYATS_CONNECT_RETRY_DELAY",
        description="Seconds before the first retry; doubles on each further retry.",
    )


class SshSettings(Section):
    """SSH

    How device sessions are opened and read: host keys, the SSH transport, jump hosts,
    legacy algorithms, and how free-text outputs are kept exact.
    """

    strict_host_key_checking: HostKeyPolicy = Field(
        default=HostKeyPolicy.ACCEPT_NEW,
        validation_alias="PYATS_SSH_STRICT_HOST_KEY_CHECKING",
        description="Device host keys: strict (known keys only), accept-new (learn unknown, refuse changed) or off.",
    )
    known_hosts_file: Path = Field(
        default=Path(".data/known_hosts"),
        validation_alias="PYATS_SSH_KNOWN_HOSTS_FILE",
        description="The service's own known_hosts file for device host keys.",
    )
    backend: SshBackend = Field(
        default=SshBackend.PARAMIKO,
        validation_alias="PYATS_SSH_BACKEND",
        description=(
            "SSH transport under Unicon: paramiko (in-process; the default: half the CPU per login, a fifth of the "
            "memory) or pty (an OpenSSH client process per session)."
        ),
    )
    config_file: Path | None = Field(
        default=None,
        validation_alias="PYATS_SSH_CONFIG_FILE",
        description="OpenSSH-style ssh_config (Host patterns, HostName, User, Port, IdentityFile, ProxyJump).",
    )
    identity_file: Path | None = Field(
        default=None,
        validation_alias="PYATS_SSH_IDENTITY_FILE",
        description="Private key for device logins, tried before the password.",
    )
    jump_host: str | None = Field(
        default=None,
        validation_alias="PYATS_SSH_JUMP_HOST",
        description="Jump host for every device: [user@]host[:port], comma-separated for a chain.",
    )
    jump_rate: float | None = Field(
        default=None,
        ge=0,
        validation_alias="PYATS_SSH_JUMP_RATE",
        description="New device connections per second through one jump host (paramiko; 0: no limit).",
    )
    jump_password_env: str | None = Field(
        default=None,
        validation_alias="PYATS_SSH_JUMP_PASSWORD_ENV",
        description="Name of the environment variable holding the jump hosts' password (paramiko).",
    )
    legacy_algorithms: Annotated[list[str], NoDecode] = Field(
        default=[],
        validation_alias="PYATS_SSH_LEGACY_ALGORITHMS",
        description=(
            "Legacy SSH algorithms to accept from every device, comma-separated (default: none). Known: "
            + ", ".join(LEGACY_ALGORITHMS)
            + ". Weak (SHA-1, CBC): name only what old devices need; the inventory's ssh_legacy_algorithms "
            "replaces it per device or group."
        ),
    )
    free_text_commands: CommaList = Field(
        default=list(FREE_TEXT_PREFIXES),
        validation_alias="PYATS_FREE_TEXT_COMMANDS",
        description="Command prefixes whose output is free text that may hold a prompt-like line, comma-separated.",
    )
    free_text_retry_sleep: float = Field(
        default=0.1,
        ge=0,
        le=5,
        validation_alias="PYATS_FREE_TEXT_RETRY_SLEEP",
        description="For free-text commands: seconds to wait for more output after a prompt is seen (0: none).",
    )
    max_output_bytes: int = Field(
        default=32 << 20,
        ge=0,
        validation_alias="PYATS_MAX_OUTPUT_BYTES",
        description=(
            "Bytes one command's output may bring (0: no limit). Past it the command fails with output_too_large "
            "and its session is closed: reading an output takes several times its size in memory."
        ),
    )

    @field_validator("legacy_algorithms", mode="before")
    @classmethod
    def _check_legacy_algorithms(cls, value: Any) -> list[str]:
        return list(parse_legacy_algorithms(value))

    @field_validator("strict_host_key_checking")
    @classmethod
    def _no_one_to_ask(cls, value: HostKeyPolicy) -> HostKeyPolicy:
        if value is HostKeyPolicy.ASK:  # a service has nobody to ask
            raise ValueError("use strict (yes), accept-new or off (no)")
        return value


class ParsingSettings(Section):
    """Parsing

    Outputs asked for as ``parsed`` go through Genie's parsers, in threads apart from the
    device work.
    """

    prewarm: CommaList = Field(
        default=[
            "iosxe:show version",
            "iosxe:show ip interface brief",
            "ios:show version",
            "nxos:show version",
            "iosxr:show version",
            "asa:show version",
        ],
        validation_alias="PYATS_PARSER_PREWARM",
        description="os:command pairs whose Genie parsers load at start-up, comma-separated.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=16,
        validation_alias="PYATS_PARSE_WORKERS",
        description="Threads that parse outputs, apart from device workers.",
    )
    max_bytes: int = Field(
        default=2_000_000,
        ge=0,
        validation_alias="PYATS_PARSE_MAX_BYTES",
        description="Larger outputs are returned unparsed (parse_status too_large).",
    )

    @field_validator("prewarm")
    @classmethod
    def _check_prewarm(cls, value: list[str]) -> list[str]:
        for item in value:
            os_name, sep, command = item.partition(":")
            if not sep or not command.strip() or os_name not in set(DeviceOS):
                raise ValueError(f"{item!r} is not os:command with os one of {', '.join(DeviceOS)}")
        return value

    def prewarm_pairs(self) -> list[tuple[DeviceOS, str]]:
        pairs = []
        for item in self.prewarm:
            os_name, _, command = item.partition(":")
            pairs.append((DeviceOS(os_name), command.strip()))
        return pairs


class FeatureFlags(Section):
    """Feature flags

    What requests may ask for beyond raw outputs.
    """

    parsing: bool = Field(
        default=True, validation_alias="PYATS_ENABLE_PARSING", description="Allow output_format parsed and both."
    )
    streaming: bool = Field(
        default=True,
        validation_alias="PYATS_ENABLE_STREAMING",
        description='Allow streamed per-device replies ("stream": true).',
    )


class LoggingSettings(Section):
    """Logging

    The service's own log lines, and those of the libraries it uses, in one output.
    """

    level: LogLevel = Field(
        default=LogLevel.INFO, validation_alias="PYATS_LOG_LEVEL", description="Level of the service's own log lines."
    )
    format: LogFormat = Field(
        default=LogFormat.TEXT,
        validation_alias="PYATS_LOG_FORMAT",
        description="text (readable) or json (one object per line).",
    )
    file: Path | None = Field(
        default=None, validation_alias="PYATS_LOG_FILE", description="Also write logs to this file."
    )
    rotation: str = Field(
        default="50 MB",
        validation_alias="PYATS_LOG_ROTATION",
        description="Rotate the log file at this size or interval (loguru syntax).",
    )
    retention: str = Field(
        default="14 days",
        validation_alias="PYATS_LOG_RETENTION",
        description="Keep rotated log files this long or this many (loguru syntax).",
    )
    asynchronous: bool = Field(
        default=False,
        validation_alias="PYATS_LOG_ASYNC",
        description="Write log lines from a background thread (loguru enqueue).",
    )
    library_level: LogLevel = Field(
        default=LogLevel.WARNING,
        validation_alias="PYATS_LOG_LIBRARY_LEVEL",
        description="Level for nats, unicon, genie and paramiko loggers.",
    )


class MetricsSettings(Section):
    """Metrics and health

    One HTTP endpoint serves Prometheus metrics, liveness and readiness.
    """

    port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        validation_alias="PYATS_METRICS_PORT",
        description="Port of the Prometheus /metrics, /healthz and /readyz endpoint (0: off).",
    )
    host: str = Field(
        default="0.0.0.0",  # noqa: S104
        validation_alias="PYATS_METRICS_HOST",
        description="Address the metrics endpoint binds to.",
    )
    readiness_probe_interval: float = Field(
        default=5.0,
        gt=0,
        validation_alias="PYATS_READINESS_PROBE_INTERVAL",
        description="Seconds between JetStream reachability checks behind /readyz (when results are kept).",
    )


class ShutdownSettings(Section):
    """Shutdown

    On SIGTERM or SIGINT the service stops taking requests and finishes those in flight up to
    the grace period; each still gets a reply.
    """

    grace: float = Field(
        default=30.0,
        ge=0,
        validation_alias="PYATS_SHUTDOWN_GRACE",
        description="Seconds in-flight requests get to finish at shutdown.",
    )


class GatewaySettings(Section):
    """HTTP gateway

    ``pyats-ro http``: the REST ancestor's routes (``POST /api/v1/execute`` and the rest) in front
    of the bus. The gateway never touches a device: it sends each request over NATS as the
    requester its API key maps to. It connects with the NATS URL above, as its own user.
    """

    host: str = Field(
        default="127.0.0.1",
        validation_alias="PYATS_GATEWAY_HOST",
        description="Address the HTTP gateway binds to.",
    )
    port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        validation_alias="PYATS_GATEWAY_PORT",
        description="Port of the HTTP gateway (the ancestor's API_PORT).",
    )
    keys_file: Path | None = Field(
        default=None,
        validation_alias="PYATS_GATEWAY_KEYS_FILE",
        description=(
            "JSON or YAML file of API keys: key id -> {sha256, requester} (`pyats-ro http --new-key` prints an entry)."
        ),
    )
    keys_env: str = Field(
        default="PYATS_GATEWAY_KEYS",
        validation_alias="PYATS_GATEWAY_KEYS_ENV",
        description="Name of an environment variable holding API keys as JSON, like the keys file.",
    )
    nats_user: str | None = Field(
        default=None,
        validation_alias="PYATS_GATEWAY_NATS_USER",
        description="NATS user of the gateway (`gateway` in ops/nats/auth.conf); default PYATS_NATS_USER.",
    )
    nats_password: SecretStr | None = Field(
        default=None,
        validation_alias="PYATS_GATEWAY_NATS_PASSWORD",
        description="NATS password of the gateway's user; default PYATS_NATS_PASSWORD.",
    )
    inbox_prefix: str = Field(
        default="_INBOX.{requester}",
        validation_alias="PYATS_GATEWAY_INBOX_PREFIX",
        description="Reply inbox of each requester's connection; {requester} is the key's requester.",
    )
    request_timeout: float = Field(
        default=330.0,
        gt=0,
        validation_alias="PYATS_GATEWAY_REQUEST_TIMEOUT",
        description=(
            "Seconds the gateway waits for the aggregate reply (streamed: between two replies) before answering 504."
        ),
    )


class McpSettings(Section):
    """MCP server

    ``pyats-ro mcp``: the MCP server for AI agents, a client of the bus like any other. It
    asks as its own requester with its own NATS login (the password from
    ``PYATS_NATS_PASSWORD``, as for every client) and names devices only from the inventory.
    """

    requester: Token = Field(
        default="mcp",
        validation_alias="PYATS_MCP_REQUESTER",
        description="Requester the MCP server asks as (<prefix>.execute.<requester>); its history is this one's.",
    )
    nats_user: str | None = Field(
        default=None,
        validation_alias="PYATS_MCP_NATS_USER",
        description="NATS user of the MCP server (default PYATS_NATS_USER); the password is PYATS_NATS_PASSWORD.",
    )
    inbox_prefix: str = Field(
        default="auto",
        validation_alias="PYATS_MCP_INBOX_PREFIX",
        description="Reply inbox prefix; auto: _INBOX.<NATS user> with a user (the shipped auth.conf), else _INBOX.",
    )
    host: str = Field(
        default="127.0.0.1",
        validation_alias="PYATS_MCP_HOST",
        description="Address the streamable HTTP transport binds to.",
    )
    port: int = Field(
        default=8765,
        ge=1,
        le=65535,
        validation_alias="PYATS_MCP_PORT",
        description="Port of the streamable HTTP transport (/mcp, /healthz, /metrics).",
    )
    request_timeout: float = Field(
        default=120.0,
        gt=0,
        validation_alias="PYATS_MCP_REQUEST_TIMEOUT",
        description="Seconds a tool call waits for the service's next message before it fails.",
    )


# --- reading the sections ---


class _SectionsSource(PydanticBaseSettingsSource):
    """Values of every section, read by one pydantic-settings source per section (the
    environment's or the .env file's) by its fields' variable names, and nested under the
    section's name."""

    def __init__(
        self, settings_cls: type[BaseSettings], read: Callable[[type[BaseSettings]], PydanticBaseSettingsSource]
    ) -> None:
        super().__init__(settings_cls)
        # pydantic-settings' sources read any pydantic model's fields, not only a BaseSettings'
        self._readers = [
            (name, read(cast("type[BaseSettings]", section)), set(_variables(section))) for name, section in sections()
        ]

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads whole sections

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, source, variables in self._readers:
            # a .env file's source also hands over the file's other variables: they are not this section's
            values = {key: value for key, value in source().items() if key in variables}
            if values:
                data[name] = values
        return data


class Settings(BaseSettings):
    """Every setting, by section. From the environment and ``.env``: ``load_settings``; from
    variable names in code (tests): ``Settings(PYATS_NATS_USER="service")`` or
    ``Settings.model_validate({...})``, which read the environment and ``.env`` too
    (``_env_file=None`` leaves the file out); every default: ``Settings.defaults()``."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    nats: NatsSettings = Field(default_factory=NatsSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    results: ResultsSettings = Field(default_factory=ResultsSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    schedules: SchedulesSettings = Field(default_factory=SchedulesSettings)
    changes: ChangesSettings = Field(default_factory=ChangesSettings)
    requests: RequestLimits = Field(default_factory=RequestLimits)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    concurrency: ConcurrencySettings = Field(default_factory=ConcurrencySettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    inventory: InventorySettings = Field(default_factory=InventorySettings)
    retries: RetrySettings = Field(default_factory=RetrySettings)
    ssh: SshSettings = Field(default_factory=SshSettings)
    parsing: ParsingSettings = Field(default_factory=ParsingSettings)
    features: FeatureFlags = Field(default_factory=FeatureFlags)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    mcp: McpSettings = Field(default_factory=McpSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, then the .env file (``_env_file`` or the
        config's), each section's variables read by pydantic-settings' own sources."""
        dotenv = cast(DotEnvSettingsSource, dotenv_settings)
        return (
            init_settings,
            _SectionsSource(settings_cls, lambda section: EnvSettingsSource(section, case_sensitive=False)),
            _SectionsSource(
                settings_cls,
                lambda section: DotEnvSettingsSource(
                    section,
                    env_file=dotenv.env_file,
                    env_file_encoding=dotenv.env_file_encoding,
                    case_sensitive=False,
                ),
            ),
        )

    @classmethod
    def defaults(cls) -> Settings:
        """Every setting at its default, whatever the environment says (docs, schemas, tests)."""
        return cls.model_construct()

    @model_validator(mode="before")
    @classmethod
    def _nest_variables(cls, data: Any) -> Any:
        """Variables given by name at the top (``Settings(PYATS_NATS_URL=...)``) go to their section."""
        if not isinstance(data, dict):
            return data
        index = _section_of()
        nested: dict[str, Any] = {}
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(key, str) and key.upper().startswith(ENV_PREFIX):
                flat[key.upper()] = value
            else:
                nested[key] = value
        for name, value in flat.items():
            if name not in index:
                raise ValueError(f"{name} is not a setting")
            section = nested.get(index[name], {})
            if not isinstance(section, dict):
                raise ValueError(f"{name} given beside a whole {index[name]} section")
            nested[index[name]] = {**section, name: value}
        return nested

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        if self.timeouts.command_default > self.timeouts.command_max:
            raise ValueError("PYATS_COMMAND_TIMEOUT_DEFAULT must not exceed PYATS_COMMAND_TIMEOUT_MAX")
        if self.ssh.jump_password_env and self.ssh.backend != SshBackend.PARAMIKO:
            raise ValueError(
                "PYATS_SSH_JUMP_PASSWORD_ENV needs PYATS_SSH_BACKEND=paramiko; with OpenSSH, put the jump host "
                "in PYATS_SSH_CONFIG_FILE with its own key and BatchMode yes"
            )
        if bool(self.nats.tls_cert) != bool(self.nats.tls_key):
            raise ValueError("PYATS_NATS_TLS_CERT and PYATS_NATS_TLS_KEY must be set together")
        return self

    # --- views that take more than one section ---
    def limits(self) -> Limits:
        return Limits(
            max_devices=self.requests.max_devices,
            max_commands=self.requests.max_commands,
            max_payload_bytes=self.requests.max_payload_bytes,
            max_command_length=self.requests.max_command_length,
            command_timeout_max=self.timeouts.command_max,
            parsing_enabled=self.features.parsing,
            streaming_enabled=self.features.streaming,
            inline_credentials=self.inventory.allow_inline_credentials,
        )

    def reply_rule(self) -> ReplyRule:
        inbox = self.bus.reply_inbox
        if inbox == "auto":
            inbox = f"_INBOX.{REQUESTER_FIELD}" if self.nats.logs_in else "_INBOX"
        return ReplyRule(inbox=inbox, import_replies=self.bus.trust_request_info)


def sections() -> list[tuple[str, type[Section]]]:
    """The sections in the order of ``Settings``: attribute name and class."""
    found = []
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if not (isinstance(section, type) and issubclass(section, Section)):
            raise TypeError(f"Settings.{name} is not a section")
        found.append((name, section))
    return found


def _variables(section: type[Section]) -> dict[str, str]:
    """Variable name -> field name, for one section."""
    return {str(field.validation_alias): name for name, field in section.model_fields.items()}


@cache
def _section_of() -> dict[str, str]:
    """Variable name -> the section holding it; each variable in one place only."""
    index: dict[str, str] = {}
    for name, section in sections():
        for variable in _variables(section):
            if variable in index:
                raise TypeError(f"{variable} is in both {index[variable]} and {name}")
            index[variable] = name
    return index


def env_name(path: str) -> str:
    """The environment variable of a setting: ``env_name("nats.url") == "PYATS_NATS_URL"``."""
    section_name, _, field_name = path.partition(".")
    section = dict(sections())[section_name]
    return str(section.model_fields[field_name].validation_alias)


def _variable_in(loc: tuple[int | str, ...]) -> str:
    """The variable an error is about (errors of a field carry it), else ``settings``."""
    return next((part for part in loc if isinstance(part, str) and part.startswith(ENV_PREFIX)), "settings")


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Build settings or raise ``ConfigError`` naming each bad variable (never its value)."""
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            problems.append(f"{_variable_in(tuple(err.get('loc') or ()))}: {err['msg']}")
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, "invalid configuration: " + "; ".join(problems), {"problems": problems}
        ) from None
