from pathlib import Path

import pytest

from service.config import Settings, env_name, load_settings
from service.contract.errors import ConfigError
from service.domain.models import DeviceOS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PYATS_"):
            monkeypatch.delenv(name)


def test_defaults_match_the_documented_names() -> None:
    settings = load_settings(None)
    assert settings.nats_url == ["nats://127.0.0.1:4222"]
    assert settings.subject_prefix == "pyats.v1"
    assert settings.metrics_port == 9464
    assert settings.timeouts().command == 30.0
    assert settings.limits().max_devices == 500


def test_environment_and_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PYATS_SUBJECT_PREFIX=lab.v1\nPYATS_MAX_CONCURRENT_DEVICES=7\n")
    monkeypatch.setenv("PYATS_MAX_CONCURRENT_DEVICES", "9")
    monkeypatch.setenv("PYATS_NATS_URL", "nats://a:4222, nats://b:4222")
    monkeypatch.setenv("PYATS_PARSER_PREWARM", "nxos:show version,asa:show route")
    settings = load_settings(env_file)
    assert settings.subject_prefix == "lab.v1"
    assert settings.max_concurrent_devices == 9  # the environment wins over .env
    assert settings.nats_url == ["nats://a:4222", "nats://b:4222"]
    assert settings.prewarm_pairs() == [(DeviceOS.NXOS, "show version"), (DeviceOS.ASA, "show route")]


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
        ("PYATS_PARSER_PREWARM", "junos:show version"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert variable in caught.value.message


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
    settings = Settings(_env_file=None, nats_password="hunter2-canary")  # type: ignore[call-arg]
    assert "hunter2-canary" not in repr(settings)


@pytest.mark.parametrize("document", ["docs/CONFIGURATION.md", ".env.example"])
def test_every_setting_is_documented(document: str) -> None:
    text = (ROOT / document).read_text()
    missing = [env_name(field) for field in Settings.model_fields if env_name(field) not in text]
    assert not missing, f"{document} lacks {missing}"


def test_generated_settings_docs_are_current() -> None:
    from service.devtools.config_docs import env_example, tables

    assert tables() in (ROOT / "docs/CONFIGURATION.md").read_text(), "run make config-docs"
    assert (ROOT / ".env.example").read_text() == env_example(), "run make config-docs"
