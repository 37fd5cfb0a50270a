from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from service.config import Settings, env_name, load_settings, sections
from service.contract.errors import ConfigError
from service.device.unicon_session import SessionOptions
from service.domain.models import DeviceOS
from service.transport.jobs import JobSettings
from service.transport.results import StreamSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

# Every variable the flat Settings of main read before the sections (written out, not derived from
# the code under test): a valid value other than the default, where it lands, and what it reads as.
EVERY_VARIABLE: list[tuple[str, str, str, Any]] = [
    ("PYATS_NATS_URL", "nats://a:4222, nats://b:4222", "nats.url", ["nats://a:4222", "nats://b:4222"]),
    ("PYATS_NATS_USER", "svc", "nats.user", "svc"),
    ("PYATS_NATS_PASSWORD", "pw-1", "nats.password", "pw-1"),
    ("PYATS_NATS_TOKEN", "tok-1", "nats.token", "tok-1"),
    ("PYATS_NATS_CREDENTIALS_FILE", "/etc/nats/svc.creds", "nats.credentials_file", Path("/etc/nats/svc.creds")),
    ("PYATS_NATS_NKEY_SEED_FILE", "/etc/nats/svc.nk", "nats.nkey_seed_file", Path("/etc/nats/svc.nk")),
    ("PYATS_NATS_TLS_CA", "/etc/nats/ca.pem", "nats.tls_ca", Path("/etc/nats/ca.pem")),
    ("PYATS_NATS_TLS_CERT", "/etc/nats/cert.pem", "nats.tls_cert", Path("/etc/nats/cert.pem")),
    ("PYATS_NATS_TLS_KEY", "/etc/nats/key.pem", "nats.tls_key", Path("/etc/nats/key.pem")),
    ("PYATS_NATS_CONNECT_TIMEOUT", "7.5", "nats.connect_timeout", 7.5),
    ("PYATS_NATS_STARTUP_WAIT", "12", "nats.startup_wait", 12.0),
    ("PYATS_NATS_MAX_RECONNECT_ATTEMPTS", "9", "nats.max_reconnect_attempts", 9),
    ("PYATS_SUBJECT_PREFIX", "lab.v2", "bus.subject_prefix", "lab.v2"),
    ("PYATS_QUEUE_GROUP", "grp", "bus.queue_group", "grp"),
    ("PYATS_SERVICE_NAME", "svc-name", "bus.service_name", "svc-name"),
    ("PYATS_REPLY_INBOX", "replies.{requester}", "bus.reply_inbox", "replies.{requester}"),
    ("PYATS_TRUST_REQUEST_INFO", "true", "bus.trust_request_info", True),
    ("PYATS_JETSTREAM_ENABLED", "false", "results.jetstream", False),
    ("PYATS_RESULTS_STREAM", "RES_X", "results.stream", "RES_X"),
    ("PYATS_RESULTS_MAX_AGE", "3600", "results.max_age", 3600.0),
    ("PYATS_RESULTS_MAX_BYTES", "1048576", "results.max_bytes", 1048576),
    ("PYATS_RESULTS_REPLICAS", "3", "results.replicas", 3),
    ("PYATS_RESULTS_DUPLICATE_WINDOW", "60", "results.duplicate_window", 60.0),
    ("PYATS_RESULTS_STORAGE", "memory", "results.storage", "memory"),
    ("PYATS_RESULTS_BUFFER", "77", "results.buffer", 77),
    ("PYATS_JOBS_ENABLED", "false", "jobs.enabled", False),
    ("PYATS_JOBS_STREAM", "JOBS_X", "jobs.stream", "JOBS_X"),
    ("PYATS_JOBS_ACK_WAIT", "45", "jobs.ack_wait", 45.0),
    ("PYATS_JOBS_MAX_DELIVER", "3", "jobs.max_deliver", 3),
    ("PYATS_JOBS_CONCURRENCY", "8", "jobs.concurrency", 8),
    ("PYATS_SCHEDULES_ENABLED", "false", "schedules.enabled", False),
    ("PYATS_SCHEDULES_BUCKET", "SCHED_X", "schedules.bucket", "SCHED_X"),
    ("PYATS_SCHEDULES_STATE_BUCKET", "TICKS_X", "schedules.state_bucket", "TICKS_X"),
    ("PYATS_SCHEDULES_STREAM", "TICKQ_X", "schedules.stream", "TICKQ_X"),
    ("PYATS_SCHEDULES_CATCH_UP", "12", "schedules.catch_up", 12.0),
    ("PYATS_SCHEDULES_LATE_AFTER", "3", "schedules.late_after", 3.0),
    ("PYATS_SCHEDULES_MIN_INTERVAL", "2", "schedules.min_interval", 2.0),
    ("PYATS_SCHEDULES_MAX_PER_REQUESTER", "7", "schedules.max_per_requester", 7),
    ("PYATS_SCHEDULES_MAX_DEVICES", "3000", "schedules.max_devices", 3000),
    ("PYATS_SCHEDULES_CONCURRENCY", "2", "schedules.concurrency", 2),
    ("PYATS_CHANGES_ENABLED", "false", "changes.enabled", False),
    ("PYATS_CHANGES_SCOPE", "scheduled", "changes.scope", "scheduled"),
    ("PYATS_CHANGES_STREAM", "CHG_X", "changes.stream", "CHG_X"),
    ("PYATS_CHANGES_BUCKET", "BASE_X", "changes.bucket", "BASE_X"),
    ("PYATS_CHANGES_MAX_AGE", "600", "changes.max_age", 600.0),
    ("PYATS_CHANGES_RULES_FILE", "/etc/pyats/rules.yaml", "changes.rules_file", Path("/etc/pyats/rules.yaml")),
    ("PYATS_CHANGES_MAX_PATHS", "20", "changes.max_paths", 20),
    ("PYATS_MAX_DEVICES_PER_REQUEST", "40", "requests.max_devices", 40),
    ("PYATS_MAX_COMMANDS_PER_REQUEST", "9", "requests.max_commands", 9),
    ("PYATS_MAX_PAYLOAD_BYTES", "65536", "requests.max_payload_bytes", 65536),
    ("PYATS_MAX_COMMAND_LENGTH", "256", "requests.max_command_length", 256),
    ("PYATS_RATE_LIMIT_REQUESTS", "4", "policy.rate_limit_requests", 4),
    ("PYATS_RATE_LIMIT_PERIOD", "600", "policy.rate_limit_period", 600.0),
    ("PYATS_RATE_LIMIT_DEVICES", "99", "policy.rate_limit_devices", 99),
    ("PYATS_POLICY_FILE", "/etc/pyats/policy.yaml", "policy.file", Path("/etc/pyats/policy.yaml")),
    ("PYATS_REDACT_OUTPUTS", "false", "policy.redact_outputs", False),
    ("PYATS_INVENTORY_FILE", "/etc/pyats/testbed.yaml", "inventory.file", Path("/etc/pyats/testbed.yaml")),
    ("PYATS_ALLOW_INLINE_CREDENTIALS", "false", "inventory.allow_inline_credentials", False),
    ("PYATS_INVENTORY_POLL_INTERVAL", "0.3", "inventory.poll_interval", 0.3),
    ("PYATS_LOGIN_RATE_PER_SECOND", "0", "concurrency.login_rate_per_second", 0.0),
    ("PYATS_CONNECT_TIMEOUT", "2", "timeouts.connect", 2.0),
    ("PYATS_COMMAND_TIMEOUT_DEFAULT", "20", "timeouts.command_default", 20.0),
    ("PYATS_COMMAND_TIMEOUT_MAX", "120", "timeouts.command_max", 120.0),
    ("PYATS_DEVICE_TIMEOUT", "5", "timeouts.device", 5.0),
    ("PYATS_QUEUE_TIMEOUT", "1", "timeouts.queue", 1.0),
    ("PYATS_REQUEST_TIMEOUT", "99", "timeouts.request", 99.0),
    ("PYATS_MAX_CONCURRENT_DEVICES", "7", "concurrency.max_concurrent_devices", 7),
    ("PYATS_MAX_PARALLEL_PER_REQUEST", "3", "concurrency.max_parallel_per_request", 3),
    ("PYATS_MAX_SESSIONS_PER_DEVICE", "2", "concurrency.max_sessions_per_device", 2),
    ("PYATS_DEVICE_WORKERS", "2", "workers.count", 2),
    ("PYATS_EXTERNAL_WORKERS", "true", "workers.external", True),
    ("PYATS_WORKER_THREADS", "16", "workers.threads", 16),
    ("PYATS_WORKER_GROUP", "grp-2", "workers.group", "grp-2"),
    ("PYATS_WORKER_HEARTBEAT", "0.5", "workers.heartbeat", 0.5),
    ("PYATS_WORKER_WAIT", "5", "workers.wait", 5.0),
    ("PYATS_SESSION_IDLE_TTL", "120", "sessions.idle_ttl", 120.0),
    ("PYATS_MAX_WARM_SESSIONS", "10", "sessions.max_warm", 10),
    ("PYATS_CONNECT_RETRIES", "0", "retries.count", 0),
    ("PYATS_CONNECT_RETRY_DELAY", "0.25", "retries.delay", 0.25),
    ("PYATS_SSH_STRICT_HOST_KEY_CHECKING", "strict", "ssh.strict_host_key_checking", "yes"),
    (
        "PYATS_SSH_KNOWN_HOSTS_FILE",
        "/var/lib/pyats/known_hosts",
        "ssh.known_hosts_file",
        Path("/var/lib/pyats/known_hosts"),
    ),
    ("PYATS_SSH_CONFIG_FILE", "/etc/pyats/ssh_config", "ssh.config_file", Path("/etc/pyats/ssh_config")),
    ("PYATS_SSH_IDENTITY_FILE", "/etc/pyats/id_ed25519", "ssh.identity_file", Path("/etc/pyats/id_ed25519")),
    ("PYATS_SSH_JUMP_HOST", "ops@bastion:2222", "ssh.jump_host", "ops@bastion:2222"),
    ("PYATS_SSH_JUMP_RATE", "2.5", "ssh.jump_rate", 2.5),
    ("PYATS_SSH_JUMP_PASSWORD_ENV", "JUMP_PASSWORD", "ssh.jump_password_env", "JUMP_PASSWORD"),
    (
        "PYATS_SSH_LEGACY_ALGORITHMS",
        "ssh-rsa, diffie-hellman-group14-sha1",
        "ssh.legacy_algorithms",
        ["ssh-rsa", "diffie-hellman-group14-sha1"],
    ),
    ("PYATS_FREE_TEXT_COMMANDS", "show run, show clock", "ssh.free_text_commands", ["show run", "show clock"]),
    ("PYATS_FREE_TEXT_RETRY_SLEEP", "0.5", "ssh.free_text_retry_sleep", 0.5),
    ("PYATS_SSH_BACKEND", "pty", "ssh.backend", "pty"),
    (
        "PYATS_PARSER_PREWARM",
        "nxos:show version, asa:show route",
        "parsing.prewarm",
        ["nxos:show version", "asa:show route"],
    ),
    ("PYATS_PARSE_WORKERS", "4", "parsing.workers", 4),
    ("PYATS_MAX_OUTPUT_BYTES", "1000000", "ssh.max_output_bytes", 1000000),
    ("PYATS_PARSE_MAX_BYTES", "1000", "parsing.max_bytes", 1000),
    ("PYATS_ENABLE_PARSING", "false", "features.parsing", False),
    ("PYATS_ENABLE_STREAMING", "false", "features.streaming", False),
    ("PYATS_LOG_LEVEL", "debug", "logging.level", "DEBUG"),
    ("PYATS_LOG_FORMAT", "json", "logging.format", "json"),
    ("PYATS_LOG_FILE", "/var/log/pyats-ro.log", "logging.file", Path("/var/log/pyats-ro.log")),
    ("PYATS_LOG_ROTATION", "10 MB", "logging.rotation", "10 MB"),
    ("PYATS_LOG_RETENTION", "3 days", "logging.retention", "3 days"),
    ("PYATS_LOG_ASYNC", "true", "logging.asynchronous", True),
    ("PYATS_LOG_LIBRARY_LEVEL", "error", "logging.library_level", "ERROR"),
    ("PYATS_METRICS_PORT", "0", "metrics.port", 0),
    ("PYATS_METRICS_HOST", "127.0.0.1", "metrics.host", "127.0.0.1"),
    ("PYATS_READINESS_PROBE_INTERVAL", "0.5", "metrics.readiness_probe_interval", 0.5),
    ("PYATS_SHUTDOWN_GRACE", "5", "shutdown.grace", 5.0),
    ("PYATS_GATEWAY_HOST", "0.0.0.0", "gateway.host", "0.0.0.0"),
    ("PYATS_GATEWAY_PORT", "8080", "gateway.port", 8080),
    ("PYATS_GATEWAY_KEYS_FILE", "/etc/pyats-ro/keys.yaml", "gateway.keys_file", Path("/etc/pyats-ro/keys.yaml")),
    ("PYATS_GATEWAY_KEYS_ENV", "MY_KEYS", "gateway.keys_env", "MY_KEYS"),
    ("PYATS_GATEWAY_NATS_USER", "gateway", "gateway.nats_user", "gateway"),
    ("PYATS_GATEWAY_NATS_PASSWORD", "gw-secret", "gateway.nats_password", "gw-secret"),
    ("PYATS_GATEWAY_INBOX_PREFIX", "_INBOX.gw.{requester}", "gateway.inbox_prefix", "_INBOX.gw.{requester}"),
    ("PYATS_GATEWAY_REQUEST_TIMEOUT", "60", "gateway.request_timeout", 60.0),
    ("PYATS_MCP_REQUESTER", "agents", "mcp.requester", "agents"),
    ("PYATS_MCP_NATS_USER", "agents", "mcp.nats_user", "agents"),
    ("PYATS_MCP_INBOX_PREFIX", "_INBOX.agents", "mcp.inbox_prefix", "_INBOX.agents"),
    ("PYATS_MCP_HOST", "0.0.0.0", "mcp.host", "0.0.0.0"),
    ("PYATS_MCP_PORT", "9000", "mcp.port", 9000),
    ("PYATS_MCP_REQUEST_TIMEOUT", "30", "mcp.request_timeout", 30.0),
]
# a variable that is only valid together with another
PARTNERS = {
    "PYATS_NATS_TLS_CERT": {"PYATS_NATS_TLS_KEY": "/etc/nats/key.pem"},
    "PYATS_NATS_TLS_KEY": {"PYATS_NATS_TLS_CERT": "/etc/nats/cert.pem"},
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PYATS_"):
            monkeypatch.delenv(name)


def leaves(settings: Settings) -> dict[str, Any]:
    """``{"nats.url": [...], ...}``: every setting by its place."""
    return {
        f"{name}.{field}": getattr(getattr(settings, name), field)
        for name, section in sections()
        for field in section.model_fields
    }


def plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_variable_of_the_flat_settings_is_still_read() -> None:
    variables = {str(field.validation_alias) for _, section in sections() for field in section.model_fields.values()}
    listed = [variable for variable, *_ in EVERY_VARIABLE]
    assert len(listed) == len(set(listed)) == 121
    assert variables == set(listed), "a variable was lost, or a new one is missing from EVERY_VARIABLE"


@pytest.mark.parametrize("source", ["environment", ".env"])
@pytest.mark.parametrize(
    ("variable", "value", "place", "expected"), EVERY_VARIABLE, ids=[row[0] for row in EVERY_VARIABLE]
)
def test_each_variable_lands_in_its_place(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str, variable: str, value: str, place: str, expected: Any
) -> None:
    given = {variable: value, **PARTNERS.get(variable, {})}
    env_file = tmp_path / ".env"
    if source == "environment":
        for name, text in given.items():
            monkeypatch.setenv(name, text)
    else:
        env_file.write_text("".join(f"{name}={text}\n" for name, text in given.items()))
    defaults, settings = leaves(Settings.defaults()), leaves(load_settings(env_file))
    assert plain(settings[place]) == expected
    assert env_name(place) == variable
    changed = {where for where, now in settings.items() if now != defaults[where]}
    assert changed == {place_of(name) for name in given}, "the variable also changed something else"


def place_of(variable: str) -> str:
    return next(place for name, _, place, _ in EVERY_VARIABLE if name == variable)


def test_defaults_match_the_documented_names() -> None:
    settings = load_settings(None)
    assert settings.nats.url == ["nats://127.0.0.1:4222"]
    assert settings.bus.subject_prefix == "pyats.v1"
    assert settings.metrics.port == 9464
    assert settings.timeouts.by_phase().command == 30.0
    assert settings.limits().max_devices == 500
    assert leaves(settings) == leaves(Settings.defaults())


def test_environment_and_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PYATS_SUBJECT_PREFIX=lab.v1\nPYATS_MAX_CONCURRENT_DEVICES=7\nPYATS_NATS_USER=from-file\n")
    monkeypatch.setenv("PYATS_MAX_CONCURRENT_DEVICES", "9")
    monkeypatch.setenv("PYATS_NATS_URL", "nats://a:4222, nats://b:4222")
    monkeypatch.setenv("PYATS_PARSER_PREWARM", "nxos:show version,asa:show route")
    settings = load_settings(env_file)
    assert settings.bus.subject_prefix == "lab.v1"
    assert settings.concurrency.max_concurrent_devices == 9  # the environment wins over .env
    assert settings.nats.url == ["nats://a:4222", "nats://b:4222"]
    assert settings.nats.user == "from-file"  # one section from both
    assert settings.parsing.prewarm_pairs() == [(DeviceOS.NXOS, "show version"), (DeviceOS.ASA, "show route")]


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("pyats_jobs_ack_wait", "12")
    assert load_settings(None).jobs.ack_wait == 12.0


def test_settings_from_variable_names_in_code() -> None:
    settings = Settings(_env_file=None, PYATS_JOBS_ACK_WAIT="45", PYATS_NATS_URL="nats://a:1,nats://b:2")  # type: ignore[call-arg]
    assert settings.jobs.ack_wait == 45.0
    assert settings.nats.url == ["nats://a:1", "nats://b:2"]
    assert Settings.model_validate({"nats": {"PYATS_NATS_USER": "svc"}}).nats.user == "svc"
    with pytest.raises(ValueError, match="PYATS_JOBS_ACK_WAITS is not a setting"):
        Settings(_env_file=None, PYATS_JOBS_ACK_WAITS="45")  # type: ignore[call-arg]


def test_choices_take_their_documented_words(monkeypatch: pytest.MonkeyPatch) -> None:
    for word, mode in (("strict", "yes"), ("accept-new", "accept-new"), ("off", "no"), ("yes", "yes"), ("no", "no")):
        monkeypatch.setenv("PYATS_SSH_STRICT_HOST_KEY_CHECKING", word)
        assert load_settings(None).ssh.strict_host_key_checking == mode
    monkeypatch.setenv("PYATS_LOG_LEVEL", "Warning")
    assert load_settings(None).logging.level == "WARNING"


def test_sections_are_handed_over_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYATS_RESULTS_STORAGE", "memory")
    monkeypatch.setenv("PYATS_JOBS_ACK_WAIT", "45")
    monkeypatch.setenv("PYATS_SSH_BACKEND", "pty")
    monkeypatch.setenv("PYATS_MAX_OUTPUT_BYTES", "4096")
    settings = load_settings(None)
    stream = StreamSettings.of(settings.results)
    assert (stream.name, stream.storage, stream.max_age) == ("PYATS_RESULTS", "memory", 7 * 24 * 3600.0)
    jobs = JobSettings.of(settings.jobs, max_age=settings.results.max_age)
    assert (jobs.stream, jobs.ack_wait, jobs.max_age) == ("PYATS_JOBS", 45.0, 7 * 24 * 3600.0)
    options = SessionOptions.of(settings.ssh)
    assert (options.backend, options.max_output_bytes, options.strict_host_key_checking) == ("pty", 4096, "accept-new")
    assert options.free_text_prefixes == tuple(settings.ssh.free_text_commands)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PYATS_MAX_CONCURRENT_DEVICES", "zero"),
        ("PYATS_MAX_CONCURRENT_DEVICES", "0"),
        ("PYATS_SUBJECT_PREFIX", "pyats.>"),
        ("PYATS_QUEUE_GROUP", "a.b"),
        ("PYATS_NATS_URL", "localhost"),
        ("PYATS_LOG_LEVEL", "LOUD"),
        ("PYATS_LOG_FORMAT", "xml"),
        ("PYATS_METRICS_PORT", "70000"),
        ("PYATS_SSH_STRICT_HOST_KEY_CHECKING", "maybe"),
        ("PYATS_SSH_BACKEND", "telnet"),
        ("PYATS_RESULTS_STORAGE", "disk"),
        ("PYATS_RESULTS_STREAM", "a.b"),
        ("PYATS_PARSER_PREWARM", "junos:show version"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert caught.value.message.startswith(f"invalid configuration: {variable}: ")


def test_relations_between_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYATS_COMMAND_TIMEOUT_DEFAULT", "500")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert "PYATS_COMMAND_TIMEOUT_MAX" in caught.value.message


def test_secret_values_never_reach_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYATS_NATS_PASSWORD", "hunter2-canary")
    monkeypatch.setenv("PYATS_METRICS_PORT", "not-a-port-hunter2-canary")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert "hunter2-canary" not in str(caught.value)
    monkeypatch.delenv("PYATS_METRICS_PORT")
    settings = Settings(_env_file=None, PYATS_NATS_PASSWORD="hunter2-canary")  # type: ignore[call-arg]
    assert "hunter2-canary" not in repr(settings)


@pytest.mark.parametrize("document", ["docs/CONFIGURATION.md", ".env.example"])
def test_every_setting_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    variables = [str(field.validation_alias) for _, section in sections() for field in section.model_fields.values()]
    missing = [variable for variable in variables if variable not in text]
    assert not missing, f"{document} lacks {missing}"


def test_generated_settings_docs_are_current() -> None:
    from service.devtools.config_docs import env_example, tables

    assert tables() in (ROOT / "docs/CONFIGURATION.md").read_text(), "run make config-docs"
    assert (ROOT / ".env.example").read_text() == env_example(), "run make config-docs"
