"""The CLI takes options only as spelt in full."""

from __future__ import annotations

import pytest

from service.cli.main import parser
from service.devtools.lab.cli import build_parser

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "argv",
    [
        ["request", "-d", "r1", "-c", "show clock", "--enable-password", "cisco"],  # a prefix of --enable-password-env
        ["request", "-d", "r1", "-c", "show clock", "--pass", "PW"],  # a prefix of --password-env
        ["history", "--requ", "alice"],
        ["status", "--wai", "2"],
    ],
)
def test_an_abbreviated_option_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(argv)
    assert "unrecognized arguments" in capsys.readouterr().err


def test_options_spelt_in_full_still_work() -> None:
    args = parser().parse_args(["request", "-d", "r1", "-c", "show clock", "--enable-password-env", "ENABLE"])
    assert args.enable_password_env == "ENABLE"


def test_the_lab_refuses_abbreviations_too() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--cou", "2"])


@pytest.mark.parametrize("verb", ["serve", "worker", "request", "history", "diff", "status", "demo"])
def test_every_command_s_help_shows_examples(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args([verb, "--help"])
    help_text = capsys.readouterr().out
    assert "examples:" in help_text and f"pyats-ro {verb}" in help_text.split("examples:", 1)[1]


def test_the_lab_s_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "pyats-ro lab --count" in capsys.readouterr().out.split("examples:", 1)[1]
