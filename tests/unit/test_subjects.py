import json

import pytest

from service.transport.subjects import Subjects, sanitize_token

pytestmark = pytest.mark.unit


def test_requester_is_the_last_subject_token() -> None:
    assert Subjects("pyats.v1").requester_of("pyats.v1.execute.alice") == "alice"


def test_the_request_info_header_is_ignored_unless_trusted() -> None:
    """Within one account nats-server passes a client's own Nats-Request-Info through untouched."""
    forged = json.dumps({"acc": "bob"})
    assert Subjects("pyats.v1").requester_of("pyats.v1.execute.alice", forged) == "alice"


def test_server_vouched_identity_wins_across_accounts() -> None:
    subjects = Subjects("pyats.v1", trust_request_info=True)
    info = json.dumps({"acc": "TEAM", "user": "carol", "rtt": 1})
    assert subjects.requester_of("pyats.v1.execute.mallory", info) == "carol@TEAM"
    assert subjects.requester_of("pyats.v1.execute.mallory", json.dumps({"acc": "TEAM"})) == "TEAM"
    assert subjects.requester_of("pyats.v1.execute.alice", "not json") == "alice"
    for no_account in ("{}", '{"user": "carol"}', '{"acc": ""}', "[1]"):  # nothing vouched: the subject says
        assert subjects.requester_of("pyats.v1.execute.alice", no_account) == "alice"


@pytest.mark.parametrize(
    ("raw", "token"), [("10.0.0.1", "10_0_0_1"), ("a.*>b c", "a___b_c"), ("", "_"), ("ok-1_x", "ok-1_x")]
)
def test_tokens_are_sanitised(raw: str, token: str) -> None:
    assert sanitize_token(raw) == token
