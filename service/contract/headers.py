"""Every NATS header the service reads or writes, named once (docs/CONTRACT.md)."""

from __future__ import annotations

# set by the service on its replies, results and history records
REQUEST_ID = "Pyats-Request-Id"
REQUESTER = "Pyats-Requester"
DEVICE = "Pyats-Device"
STATUS = "Pyats-Status"  # a summary: ok, partial or failed
MESSAGE = "Pyats-Message"  # what a streamed message is: result, summary, output, record, end
STORED_AT = "Pyats-Stored-At"
SEQUENCE = "Pyats-Sequence"
SUBJECT = "Pyats-Subject"
TRUNCATED = "Pyats-Truncated"

# NATS's own
MSG_ID = "Nats-Msg-Id"  # JetStream de-duplication
REQUEST_INFO = "Nats-Request-Info"  # who asked, across accounts
SERVICE_ERROR = "Nats-Service-Error"  # nats.micro error replies
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"

# internal: the front and its device workers (never seen by a requester)
PART = "Pyats-Part"  # "i/n" on each piece of a result larger than one message
CONNECTS = "Pyats-Connects"  # JSON [[seconds, reused], ...]: the sessions a job used
WARM_SESSIONS = "Pyats-Warm-Sessions"  # the worker's warm sessions once the job's session went back
REFUSED = "Pyats-Refused"  # a worker that could not read a job says why (other versions during an upgrade)
