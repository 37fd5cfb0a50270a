"""Where the service may answer (service/domain/replies.py), tried with named and random subjects."""

from __future__ import annotations

import random

import pytest

from service.config import Settings
from service.domain.replies import ReplyRule, well_formed

pytestmark = pytest.mark.unit

SHIPPED = ReplyRule(inbox="_INBOX.{requester}")
OPEN = ReplyRule(inbox="_INBOX")

HOSTILE = [
    "$JS.API.STREAM.PURGE.PYATS_RESULTS",
    "$JS.API.STREAM.DELETE.PYATS_RESULTS",
    "pyats.v1.results.bob.r1.device",
    "pyats.v1.results.alice.r1.device",
    "pyats.v1.execute.bob",
    "pyats.v1.notify.alice.done",  # a notify subject, not an inbox
    "_INBOX.bob.x",
    "_INBOX.alice",  # the prefix itself, not under it
    "_INBOX.alicebob.x",
    "_INBOX.alice.*",
    "_INBOX.alice.>",
    "_INBOX.alice..x",
    "_INBOX.alice.x y",
    "_INBOX.alice.x\r\nPUB evil 1",
    "_INBOX.alice." + "x" * 600,
    "_R_.abc.def",
    "$SRV.PING",
    "_inbox.alice.x",
]


@pytest.mark.parametrize("reply", HOSTILE)
def test_named_attacks_are_refused(reply: str) -> None:
    assert SHIPPED.refusal(reply, "alice") is not None


@pytest.mark.parametrize("reply", ["_INBOX.alice.x", "_INBOX.alice.k3J9.1", "_INBOX.alice.a.b.c.d"])
def test_the_requester_s_own_inbox_is_allowed(reply: str) -> None:
    assert SHIPPED.refusal(reply, "alice") is None


def test_no_reply_means_nothing_is_published() -> None:
    assert SHIPPED.refusal(None, "alice") is None and SHIPPED.refusal("", "alice") is None


def random_subjects(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    tokens = ["_INBOX", "alice", "bob", "$JS", "API", "STREAM", "PURGE", "pyats", "v1", "results", "*", ">", "", "_R_"]
    chars = "aA0._-*>$ \t\x00é"
    subjects = []
    for _ in range(count):
        if rng.random() < 0.5:
            subjects.append(".".join(rng.choice(tokens) for _ in range(rng.randint(1, 7))))
        else:
            subjects.append("".join(rng.choice(chars) for _ in range(rng.randint(0, 30))))
    return subjects


@pytest.mark.parametrize("seed", range(5))
def test_no_random_subject_outside_the_inbox_is_ever_allowed(seed: int) -> None:
    for reply in random_subjects(2000, seed):
        if SHIPPED.refusal(reply, "alice") is None and reply:
            assert reply.startswith("_INBOX.alice.") and well_formed(reply), reply
        if OPEN.refusal(reply, "alice") is None and reply:
            assert reply.startswith("_INBOX.") and well_formed(reply), reply
        if SHIPPED.refusal(reply, None) is None and reply:  # discovery: any inbox, nothing else
            assert reply.startswith("_INBOX.") and well_formed(reply), reply


def test_without_auth_every_inbox_but_nothing_else() -> None:
    assert OPEN.refusal("_INBOX.k3J9.1", "alice") is None
    assert OPEN.refusal("pyats.v1.results.bob.r.d", "alice") is not None
    assert OPEN.refusal("$JS.API.STREAM.PURGE.PYATS_RESULTS", "alice") is not None


def test_import_replies_only_when_trusted() -> None:
    trusted = ReplyRule(inbox="_INBOX.{requester}", import_replies=True)
    assert SHIPPED.refusal("_R_.Xy12.Ab", "carol@TEAM") is not None
    assert trusted.refusal("_R_.Xy12.Ab", "carol@TEAM") is None
    assert trusted.refusal("$JS.API.STREAM.PURGE.PYATS_RESULTS", "carol@TEAM") is not None


def test_notify_goes_to_the_requester_s_notify_subjects_or_inbox() -> None:
    prefix = "pyats.v1.notify.alice"
    assert SHIPPED.notify_refusal("pyats.v1.notify.alice.nightly", "alice", prefix) is None
    assert SHIPPED.notify_refusal("_INBOX.alice.x", "alice", prefix) is None
    for subject in ("pyats.v1.notify.alice", "pyats.v1.notify.bob.x", "pyats.v1.results.bob.j.d", "team.done"):
        assert SHIPPED.notify_refusal(subject, "alice", prefix) is not None, subject
    # under the notify prefix, but not a literal subject: a wildcard or an empty token
    for subject in ("pyats.v1.notify.alice.*", "pyats.v1.notify.alice.>", "pyats.v1.notify.alice..x"):
        assert SHIPPED.notify_refusal(subject, "alice", prefix) is not None, subject


def test_auto_follows_whether_the_service_logs_in() -> None:
    assert Settings().reply_rule() == ReplyRule(inbox="_INBOX")
    assert Settings(PYATS_NATS_USER="service").reply_rule() == ReplyRule(inbox="_INBOX.{requester}")
    assert Settings(PYATS_REPLY_INBOX="replies.{requester}").reply_rule().inbox_of("bob") == "replies.bob"
    assert Settings(PYATS_TRUST_REQUEST_INFO=True).reply_rule().import_replies


@pytest.mark.parametrize("bad", ["", "_INBOX.*", "_INBOX.>", "_INBOX..x", "_INBOX.{requester}.{requester}", "a b"])
def test_a_bad_reply_inbox_setting_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="PYATS_REPLY_INBOX"):
        Settings(PYATS_REPLY_INBOX=bad)
