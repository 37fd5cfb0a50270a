"""Settings, built once at start-up from the environment and ``.env`` (prefix ``PYATS_``).

Every field here is documented in docs/CONFIGURATION.md and listed in .env.example;
a test fails when either misses one. Grouped views (``timeouts()``, ``limits()``) hand
each layer only what it needs, so nothing reads settings from a global.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.contract.errors import ConfigError, ErrorCode
from service.domain.legacy_ssh import LEGACY_ALGORITHMS, parse_legacy_algorithms
from service.domain.models import FREE_TEXT_PREFIXES, DeviceOS, Timeouts
from service.domain.policy import Limits
from service.domain.replies import REQUESTER_FIELD, ReplyRule, well_formed
from service.domain.requester_policy import RateRule

ENV_PREFIX = "PYATS_"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- NATS connection ---
    nats_url: Annotated[list[str], NoDecode] = Field(
        default=["nats://127.0.0.1:4222"],
        description="NATS server URL(s), comma-separated for a cluster.",
    )
    nats_user: str | None = Field(default=None, description="NATS user name.")
    nats_password: SecretStr | None = Field(default=None, description="NATS password.")
    nats_token: SecretStr | None = Field(default=None, description="NATS token.")
    nats_credentials_file: Path | None = Field(default=None, description="NATS .creds file (JWT + nkey seed).")
    nats_nkey_seed_file: Path | None = Field(
        default=None, description="File holding the NATS user nkey seed (SU...), for nkey authentication."
    )
    nats_tls_ca: Path | None = Field(default=None, description="CA bundle that signed the NATS server certificate.")
    nats_tls_cert: Path | None = Field(default=None, description="Client certificate for mutual TLS.")
    nats_tls_key: Path | None = Field(default=None, description="Private key of the client certificate.")
    nats_connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for each NATS connect attempt.")
    nats_startup_wait: float = Field(
        default=30.0, gt=0, description="Seconds start-up waits for NATS before giving up with an error."
    )
    nats_max_reconnect_attempts: int = Field(
        default=-1, ge=-1, description="Reconnect attempts after a lost connection (-1: forever)."
    )
    subject_prefix: str = Field(default="pyats.v1", description="Prefix of every subject the service listens on.")
    queue_group: str = Field(default="pyats-ro", description="Queue group shared by all replicas.")
    service_name: str = Field(default="pyats-ro", description="nats.micro service name ($SRV.PING/INFO/STATS).")
    reply_inbox: str = Field(
        default="auto",
        description=(
            "Subject prefix replies may go to; {requester} stands for the requester's token. auto: "
            "_INBOX.{requester} when the service logs in to NATS (the shipped permissions), else _INBOX. "
            "A request whose reply subject lies elsewhere is dropped unanswered (reply_forbidden)."
        ),
    )
    trust_request_info: bool = Field(
        default=False,
        description=(
            "Take the requester from the Nats-Request-Info header that nats-server sets on requests from "
            "another account (service imports), and allow their _R_.> reply subjects. Only for deployments "
            "where no requester shares the service's account: within one account the header can be forged."
        ),
    )

    # --- results in JetStream ---
    jetstream_enabled: bool = Field(
        default=True, description="Keep results in a JetStream stream for replay (without JetStream: published only)."
    )
    results_stream: str = Field(default="PYATS_RESULTS", description="Name of the JetStream stream holding results.")
    results_max_age: float = Field(
        default=7 * 24 * 3600.0, gt=0, description="Seconds results are kept (default 7 days)."
    )
    results_max_bytes: int = Field(
        default=-1, ge=-1, description="Largest size of the results stream in bytes (-1: no limit)."
    )
    results_replicas: int = Field(
        default=1, ge=1, le=5, description="Replicas of the results stream (clustered JetStream)."
    )
    results_duplicate_window: float = Field(
        default=120.0,
        gt=0,
        description="Seconds within which a result with the same Nats-Msg-Id is dropped as a duplicate.",
    )
    results_storage: str = Field(default="file", description="Storage of the results stream: file or memory.")
    results_buffer: int = Field(
        default=10_000,
        ge=1,
        description="Results held for publishing while NATS is away; beyond it the oldest are dropped.",
    )

    # --- durable jobs ---
    jobs_enabled: bool = Field(
        default=True, description="Take durable jobs from <prefix>.jobs.<requester> (needs JetStream)."
    )
    jobs_stream: str = Field(default="PYATS_JOBS", description="Name of the work-queue stream holding jobs.")
    jobs_ack_wait: float = Field(
        default=30.0, gt=0, description="Seconds without progress after which a job goes to another replica."
    )
    jobs_max_deliver: int = Field(default=5, ge=1, description="Deliveries of one job before it is given up.")
    jobs_concurrency: int = Field(default=4, ge=1, le=64, description="Jobs one replica works on at the same time.")

    # --- request limits (checked before any device is touched) ---
    max_devices_per_request: int = Field(default=500, ge=1, description="Devices allowed in one request.")
    max_commands_per_request: int = Field(default=50, ge=1, description="Commands allowed in one request.")
    max_payload_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest request payload accepted, in bytes."
    )
    max_command_length: int = Field(
        default=512, ge=16, description="Longest command line (command plus pipe) accepted."
    )

    # --- rate limits ---
    rate_limit_requests: int = Field(
        default=60, ge=0, description="Requests each requester may send per period (0: unlimited)."
    )
    rate_limit_period: float = Field(default=60.0, gt=0, description="Rate-limit period in seconds.")
    rate_limit_devices: int = Field(
        default=5000,
        ge=0,
        description="Devices each requester may ask for per period, summed over requests (0: unlimited).",
    )
    policy_file: Path | None = Field(
        default=None, description="YAML file of per-requester rules: allow/deny regexes, max devices, rates, redaction."
    )
    redact_outputs: bool = Field(
        default=True, description="Redact secrets (passwords, keys, communities, hashes) from outputs by default."
    )

    # --- inventory ---
    inventory_file: Path | None = Field(
        default=None, description="pyATS testbed YAML naming devices, so requests can use 'name' or 'group'."
    )
    allow_inline_credentials: bool = Field(
        default=True, description="Accept device credentials inside requests (false: inventory devices only)."
    )
    inventory_poll_interval: float = Field(
        default=2.0, ge=0, description="Seconds between checks of the inventory file for changes (0: SIGHUP only)."
    )
    login_rate_per_second: float = Field(
        default=20.0, ge=0, description="New SSH logins per second across the service (0: unlimited)."
    )

    # --- timeouts (seconds) ---
    connect_timeout: float = Field(default=30.0, gt=0, description="Deadline for SSH login to one device.")
    command_timeout_default: float = Field(
        default=30.0, gt=0, description="Per-command deadline when the request gives no timeout."
    )
    command_timeout_max: float = Field(
        default=300.0, gt=0, description="Largest per-command timeout a request may ask for."
    )
    device_timeout: float = Field(
        default=600.0, gt=0, description="Deadline for all work on one device (login and every command)."
    )
    queue_timeout: float = Field(
        default=300.0, gt=0, description="Longest a device may wait for a free worker (else queue_timeout)."
    )
    request_timeout: float = Field(
        default=900.0,
        gt=0,
        description="Deadline for a whole request; devices not started by then fail (request_timeout).",
    )

    # --- concurrency ---
    max_concurrent_devices: int = Field(default=50, ge=1, le=1000, description="Worker threads shared by all requests.")
    max_parallel_per_request: int = Field(
        default=50, ge=1, description="Devices of one request worked on at the same time (requests share fairly)."
    )
    max_sessions_per_device: int = Field(
        default=1, ge=1, le=16, description="Concurrent SSH sessions to one host:port (devices have few VTY lines)."
    )

    # --- device workers ---
    device_workers: int | None = Field(
        default=None,
        ge=0,
        le=256,
        description=(
            "Device worker processes 'pyats-ro serve' starts beside the front (empty: one per CPU core; 0: none, the "
            "device work runs in the front's own process unless external_workers is set)."
        ),
    )
    external_workers: bool = Field(
        default=False,
        description="Send device work to workers started elsewhere ('pyats-ro worker'), even with no local ones.",
    )
    worker_threads: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=(
            "Most devices one worker process works on at once (empty: max_concurrent_devices); below it the worker "
            "keeps as many as its CPU can serve, and the rest wait, served fairly across requests."
        ),
    )
    worker_group: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description=(
            "Fronts and workers of one group share the workers (and so each device's warm session); a replica with "
            "other device settings needs its own group."
        ),
    )
    worker_heartbeat: float = Field(
        default=1.0, gt=0, le=30, description="Seconds between a worker's heartbeats; 3 missed and its devices move."
    )
    worker_wait: float = Field(
        default=30.0,
        ge=0,
        description="Longest a device waits for a device worker to be running (else service_unavailable).",
    )

    # --- warm sessions ---
    session_idle_ttl: float = Field(
        default=60.0, ge=0, description="Seconds a device session stays open for reuse after use (0: close at once)."
    )
    max_warm_sessions: int = Field(
        default=1000, ge=0, description="Cap on idle warm sessions; the least recently used close first."
    )

    # --- connection retries ---
    connect_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Extra login attempts after a refused or timed-out connect (never after an auth failure).",
    )
    connect_retry_delay: float = Field(
        default=1.0, ge=0, description="Seconds before the first retry; doubles on each further retry."
    )

    # --- SSH ---
    ssh_strict_host_key_checking: str = Field(
        default="accept-new",
        description="Device host keys: strict (known keys only), accept-new (learn unknown, refuse changed) or off.",
    )
    ssh_known_hosts_file: Path = Field(
        default=Path(".data/known_hosts"), description="The service's own known_hosts file for device host keys."
    )
    ssh_config_file: Path | None = Field(
        default=None,
        description="OpenSSH-style ssh_config (Host patterns, HostName, User, Port, IdentityFile, ProxyJump).",
    )
    ssh_identity_file: Path | None = Field(
        default=None, description="Private key for device logins, tried before the password."
    )
    ssh_jump_host: str | None = Field(
        default=None, description="Jump host for every device: [user@]host[:port], comma-separated for a chain."
    )
    ssh_jump_rate: float | None = Field(
        default=None,
        ge=0,
        description="New device connections per second through one jump host (paramiko; 0: no limit).",
    )
    ssh_jump_password_env: str | None = Field(
        default=None, description="Name of the environment variable holding the jump hosts' password (paramiko)."
    )
    ssh_legacy_algorithms: Annotated[list[str], NoDecode] = Field(
        default=[],
        description=(
            "Legacy SSH algorithms to accept from every device, comma-separated (default: none). Known: "
            + ", ".join(LEGACY_ALGORITHMS)
            + ". Weak (SHA-1, CBC): name only what old devices need; the inventory's ssh_legacy_algorithms "
            "replaces it per device or group."
        ),
    )
    free_text_commands: Annotated[list[str], NoDecode] = Field(
        default=list(FREE_TEXT_PREFIXES),
        description="Command prefixes whose output is free text that may hold a prompt-like line, comma-separated.",
    )
    free_text_retry_sleep: float = Field(
        default=0.1,
        ge=0,
        le=5,
        description="For free-text commands: seconds to wait for more output after a prompt is seen (0: none).",
    )
    ssh_backend: str = Field(
        default="paramiko",
        description=(
            "SSH transport under Unicon: paramiko (in-process; the default: half the CPU per login, a fifth of the "
            "memory) or pty (an OpenSSH client process per session)."
        ),
    )

    # --- parsing ---
    parser_prewarm: Annotated[list[str], NoDecode] = Field(
        default=[
            "iosxe:show version",
            "iosxe:show ip interface brief",
            "ios:show version",
            "nxos:show version",
            "iosxr:show version",
            "asa:show version",
        ],
        description="os:command pairs whose Genie parsers load at start-up, comma-separated.",
    )

    parse_workers: int = Field(
        default=1, ge=1, le=16, description="Threads that parse outputs, apart from device workers."
    )
    max_output_bytes: int = Field(
        default=32 << 20,
        ge=0,
        description=(
            "Bytes one command's output may bring (0: no limit). Past it the command fails with output_too_large "
            "and its session is closed: reading an output takes several times its size in memory."
        ),
    )
    parse_max_bytes: int = Field(
        default=2_000_000, ge=0, description="Larger outputs are returned unparsed (parse_status too_large)."
    )

    # --- feature flags ---
    enable_parsing: bool = Field(default=True, description="Allow output_format parsed and both.")
    enable_streaming: bool = Field(default=True, description='Allow streamed per-device replies ("stream": true).')

    # --- logging ---
    log_level: str = Field(default="INFO", description="Level of the service's own log lines.")
    log_format: LogFormat = Field(default=LogFormat.TEXT, description="text (readable) or json (one object per line).")
    log_file: Path | None = Field(default=None, description="Also write logs to this file.")
    log_rotation: str = Field(
        default="50 MB", description="Rotate the log file at this size or interval (loguru syntax)."
    )
    log_retention: str = Field(
        default="14 days", description="Keep rotated log files this long or this many (loguru syntax)."
    )
    log_async: bool = Field(default=False, description="Write log lines from a background thread (loguru enqueue).")
    log_library_level: str = Field(default="WARNING", description="Level for nats, unicon, genie and paramiko loggers.")

    # --- metrics and health ---
    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics, /healthz and /readyz endpoint (0: off).",
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address the metrics endpoint binds to.")  # noqa: S104
    readiness_probe_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between JetStream reachability checks behind /readyz (when results are kept).",
    )

    # --- shutdown ---
    shutdown_grace: float = Field(
        default=30.0, ge=0, description="Seconds in-flight requests get to finish at shutdown."
    )

    @field_validator("nats_url", "parser_prewarm", "free_text_commands", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("nats_url")
    @classmethod
    def _check_urls(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one NATS URL is required")
        for url in value:
            if "://" not in url:
                raise ValueError(f"{url!r} is not a URL like nats://host:4222")
        return value

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

    @field_validator("queue_group", "service_name")
    @classmethod
    def _check_token(cls, value: str) -> str:
        if not value or any(c in value for c in " .*>\t"):
            raise ValueError("must be one token without spaces, dots, '*' or '>'")
        return value

    @field_validator("log_level", "log_library_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("results_storage")
    @classmethod
    def _check_storage(cls, value: str) -> str:
        if value not in {"file", "memory"}:
            raise ValueError("must be file or memory")
        return value

    @field_validator("results_stream", "jobs_stream")
    @classmethod
    def _check_stream_name(cls, value: str) -> str:
        if not value or any(c in value for c in " .*>\t/"):
            raise ValueError("must be a stream name without spaces, dots, '*', '>' or '/'")
        return value

    @field_validator("ssh_backend")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        if value not in {"pty", "paramiko"}:
            raise ValueError("must be pty or paramiko")
        return value

    @field_validator("ssh_legacy_algorithms", mode="before")
    @classmethod
    def _check_legacy_algorithms(cls, value: Any) -> list[str]:
        return list(parse_legacy_algorithms(value))

    @field_validator("ssh_strict_host_key_checking")
    @classmethod
    def _check_host_key_mode(cls, value: str) -> str:
        value = {"strict": "yes", "off": "no"}.get(value, value)  # OpenSSH's words are accepted too
        if value not in {"yes", "accept-new", "no"}:
            raise ValueError("must be strict, accept-new or off")
        return value

    @field_validator("parser_prewarm")
    @classmethod
    def _check_prewarm(cls, value: list[str]) -> list[str]:
        for item in value:
            os_name, sep, command = item.partition(":")
            if not sep or not command.strip() or os_name not in set(DeviceOS):
                raise ValueError(f"{item!r} is not os:command with os one of {', '.join(DeviceOS)}")
        return value

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        if self.command_timeout_default > self.command_timeout_max:
            raise ValueError("PYATS_COMMAND_TIMEOUT_DEFAULT must not exceed PYATS_COMMAND_TIMEOUT_MAX")
        if self.ssh_jump_password_env and self.ssh_backend != "paramiko":
            raise ValueError(
                "PYATS_SSH_JUMP_PASSWORD_ENV needs PYATS_SSH_BACKEND=paramiko; with OpenSSH, put the jump host "
                "in PYATS_SSH_CONFIG_FILE with its own key and BatchMode yes"
            )
        if bool(self.nats_tls_cert) != bool(self.nats_tls_key):
            raise ValueError("PYATS_NATS_TLS_CERT and PYATS_NATS_TLS_KEY must be set together")
        return self

    # --- grouped views handed to the layers ---
    def timeouts(self, command: float | None = None) -> Timeouts:
        return Timeouts(
            connect=self.connect_timeout,
            command=command if command is not None else self.command_timeout_default,
            device=self.device_timeout,
        )

    def limits(self) -> Limits:
        return Limits(
            max_devices=self.max_devices_per_request,
            max_commands=self.max_commands_per_request,
            max_payload_bytes=self.max_payload_bytes,
            max_command_length=self.max_command_length,
            command_timeout_max=self.command_timeout_max,
            parsing_enabled=self.enable_parsing,
            streaming_enabled=self.enable_streaming,
            inline_credentials=self.allow_inline_credentials,
        )

    def reply_rule(self) -> ReplyRule:
        inbox = self.reply_inbox
        if inbox == "auto":
            logins = (self.nats_user, self.nats_token, self.nats_credentials_file, self.nats_nkey_seed_file)
            authenticated = any(logins) or self.nats_tls_cert is not None
            inbox = f"_INBOX.{REQUESTER_FIELD}" if authenticated else "_INBOX"
        return ReplyRule(inbox=inbox, import_replies=self.trust_request_info)

    def rate_rule(self) -> RateRule:
        return RateRule(
            requests=self.rate_limit_requests, devices=self.rate_limit_devices, period=self.rate_limit_period
        )

    def worker_processes(self) -> int:
        """How many device worker processes ``serve`` starts."""
        if self.device_workers is not None:
            return self.device_workers
        # the cores this process may run on (a container pinned with --cpuset-cpus sees its own)
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    @property
    def uses_workers(self) -> bool:
        """Device work goes to worker processes (local or external), not this process's threads."""
        return self.worker_processes() > 0 or self.external_workers

    def prewarm_pairs(self) -> list[tuple[DeviceOS, str]]:
        pairs = []
        for item in self.parser_prewarm:
            os_name, _, command = item.partition(":")
            pairs.append((DeviceOS(os_name), command.strip()))
        return pairs


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Build settings or raise ``ConfigError`` naming each bad variable (never its value)."""
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = err.get("loc") or ()
            name = env_name(str(loc[0])) if loc else "settings"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError(
            ErrorCode.CONFIG_INVALID, "invalid configuration: " + "; ".join(problems), {"problems": problems}
        ) from None
