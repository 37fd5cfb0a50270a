"""Where the service may answer: only under the asking requester's own inbox.

A NATS requester picks its reply subject freely, and the server does not check it
against the requester's permissions; the service then publishes there with its own,
wider ones. Without this rule a reply subject of ``$JS.API.STREAM.PURGE.<stream>`` or
``<prefix>.results.<someone else>...`` makes the service purge its stream or forge
another requester's history (a confused deputy). So every reply, streamed message and
end marker, and every job notification, goes only to a subject this rule allows, and a
request whose reply subject it refuses is dropped before any work is done.
"""

from __future__ import annotations

from dataclasses import dataclass

REQUESTER_FIELD = "{requester}"
IMPORT_REPLY_PREFIX = "_R_."  # nats-server's reply subjects for cross-account service imports
MAX_REPLY_LENGTH = 512
_WILDCARDS = frozenset("*>")


def well_formed(subject: str) -> bool:
    """A literal subject: non-empty tokens, no wildcard, whitespace or control characters."""
    if not subject or len(subject) > MAX_REPLY_LENGTH:
        return False
    if any(ch.isspace() or not ch.isprintable() for ch in subject):
        return False
    return all(token and not (_WILDCARDS & set(token)) for token in subject.split("."))


@dataclass(frozen=True, slots=True)
class ReplyRule:
    """``inbox`` is a subject prefix where ``{requester}`` stands for the requester's token
    (``_INBOX.{requester}`` under the shipped NATS permissions, ``_INBOX`` without auth).
    ``import_replies`` also allows nats-server's ``_R_.`` subjects, which carry the replies
    of requests that crossed from another account."""

    inbox: str = "_INBOX"
    import_replies: bool = False

    def inbox_of(self, requester: str) -> str:
        return self.inbox.replace(REQUESTER_FIELD, requester)

    @property
    def any_inbox(self) -> str:
        """The part every requester's inbox shares: where discovery ($SRV) replies may go."""
        base = self.inbox.split(REQUESTER_FIELD, 1)[0].rstrip(".")
        return base or self.inbox

    def refusal(self, reply: str | None, requester: str | None) -> str | None:
        """Why the service may not publish to ``reply`` for ``requester``; None when it may.
        With no requester (discovery requests) any requester's inbox will do."""
        if not reply:
            return None  # nothing will be published
        if not well_formed(reply):
            return "the reply subject is not a literal NATS subject"
        if self.import_replies and reply.startswith(IMPORT_REPLY_PREFIX):
            return None
        if requester is None:
            if reply.startswith(self.any_inbox + "."):
                return None
            return f"discovery replies go only to a reply inbox {self.any_inbox}.>"
        inbox = self.inbox_of(requester)
        if reply.startswith(inbox + "."):
            return None
        return f"replies go only to the requester's own inbox {inbox}.>"

    def notify_refusal(self, subject: str, requester: str, notify_prefix: str) -> str | None:
        """A job's ``notify`` may name the requester's inbox or a subject under ``notify_prefix``
        (``<prefix>.notify.<requester>``)."""
        if well_formed(subject) and subject.startswith(notify_prefix + "."):
            return None
        if self.refusal(subject, requester) is None:
            return None
        return f"notify goes only to {notify_prefix}.> or the requester's own inbox {self.inbox_of(requester)}.>"
