import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from service.device import unicon_logs
from service.domain.live_secrets import LIVE_SECRETS
from service.observability.logging import route_library_logger, setup_logging

pytestmark = pytest.mark.unit


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "service.log"
    setup_logging(level="DEBUG", fmt="json", file=path, library_level="INFO")
    yield path
    logger.remove()


def entries(path: Path) -> list[dict[str, object]]:
    logger.complete()
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_lines_carry_the_request_context_from_worker_threads(log_file: Path) -> None:
    import contextvars

    with logger.contextualize(request_id="req-42", requester="alice", device="r1"):
        context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(logger.info, "from a worker {}", "thread"))
    worker.start()
    worker.join()
    [entry] = entries(log_file)
    assert entry["message"] == "from a worker thread"
    assert (entry["request_id"], entry["requester"], entry["device"]) == ("req-42", "alice", "r1")
    assert {"time", "level", "module", "thread"} <= entry.keys()


def test_library_loggers_are_routed_with_context(log_file: Path) -> None:
    with logger.contextualize(request_id="req-7"):
        logging.getLogger("unicon.plugins.iosxe").info("from unicon")
        logging.getLogger("paramiko.transport").debug("below the library level")
    [entry] = entries(log_file)
    assert entry["message"] == "from unicon"
    assert entry["request_id"] == "req-7"
    assert entry["module"] == "unicon.plugins.iosxe"


def test_exceptions_are_named_without_variable_values(log_file: Path) -> None:
    secret = "pw-canary-123"  # noqa: F841 - loguru's diagnose would print it
    try:
        raise ValueError("boom")
    except ValueError as exc:
        logger.opt(exception=exc).error("failed")
    text = log_file.read_text()
    assert "pw-canary-123" not in text
    assert entries(log_file)[0]["exception"] == "ValueError"


def test_live_secrets_are_masked_in_library_lines_until_released(log_file: Path) -> None:
    forms = LIVE_SECRETS.add(["s3cr3t", 'quo"te\\'])
    shared = logging.getLogger("unicon.10.0.0.1.1795661667")  # Unicon's per-connection name
    shared.propagate = False  # as Unicon makes it
    unicon_logs.hold(shared, route_library_logger)  # as the device layer does for each connection
    unicon_logs.hold(shared, route_library_logger)  # a second connection to the same host in the same second
    shared.warning(">>> Unicon Sending:: %r", "s3cr3t\r")
    shared.warning(">>> Unicon Sending:: %r", 'quo"te\\\r')
    unicon_logs.release(shared)
    assert "unicon.10.0.0.1.1795661667" in logging.Logger.manager.loggerDict  # still used by the other
    LIVE_SECRETS.remove(forms)
    shared.warning("after release: s3cr3t")
    unicon_logs.release(shared)
    assert "unicon.10.0.0.1.1795661667" not in logging.Logger.manager.loggerDict
    logger.complete()
    text = log_file.read_text()
    assert "s3cr3t" not in text.split("after release")[0] and 'quo\\"te' not in text
    assert text.count("*****") == 2
    assert "after release: s3cr3t" in text  # no longer a live secret: masking ends with the session


def test_a_secret_is_masked_in_its_repr_form_and_a_longer_one_is_never_half_masked(log_file: Path) -> None:
    forms = LIVE_SECRETS.add(["back\\slash", "pre", "prefix-pw"])
    library = logging.getLogger("unicon.10.0.0.2.1795661668")
    library.propagate = False  # as Unicon makes it
    unicon_logs.hold(library, route_library_logger)  # as the device layer does for each connection
    library.warning(">>> Unicon Sending:: %r", "back\\slash\r")  # repr doubles the backslash
    library.warning("sending prefix-pw")
    unicon_logs.release(library)
    LIVE_SECRETS.remove(forms)
    messages = [str(entry["message"]) for entry in entries(log_file)]
    assert messages == [">>> Unicon Sending:: '*****\\r'", "sending *****"]
