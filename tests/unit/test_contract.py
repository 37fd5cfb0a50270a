import json

import msgspec
import pytest

from service.contract.codec import decode_request, encode
from service.contract.errors import ErrorCode, RequestError
from service.contract.messages import CommandResult, DeviceSpec

pytestmark = pytest.mark.unit

GOOD = {
    "devices": [{"hostname": "10.0.0.1", "username": "admin", "password": "s3cret", "os": "iosxe"}],
    "commands": [{"command": "show version"}],
}


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_decodes_the_ancestor_request_with_defaults() -> None:
    request = decode_request(raw(GOOD), 10_000)
    assert request.devices[0].port is None  # 22 is applied by policy, so inventory references can omit it
    assert request.output_format == "raw"
    assert request.timeout is None
    assert request.stream is False


@pytest.mark.parametrize(
    ("payload", "code", "fragment"),
    [
        (b"{not json", ErrorCode.INVALID_JSON, "not valid JSON"),
        (b"   ", ErrorCode.INVALID_JSON, "empty"),
        (raw({**GOOD, "extra": 1}), ErrorCode.INVALID_REQUEST, "unknown field `extra`"),
        (raw({**GOOD, "timeout": "soon"}), ErrorCode.INVALID_REQUEST, "$.timeout"),
        (raw({**GOOD, "output_format": "xml"}), ErrorCode.INVALID_REQUEST, "$.output_format"),
        (raw({"commands": GOOD["commands"]}), ErrorCode.INVALID_REQUEST, "devices"),
        (
            raw({**GOOD, "devices": [{**GOOD["devices"][0], "port": "22"}]}),
            ErrorCode.INVALID_REQUEST,
            "$.devices[0].port",
        ),
        (raw({**GOOD, "devices": [{**GOOD["devices"][0], "passwd": "x"}]}), ErrorCode.INVALID_REQUEST, "passwd"),
    ],
)
def test_bad_payloads_get_a_code_and_a_path(payload: bytes, code: ErrorCode, fragment: str) -> None:
    with pytest.raises(RequestError) as caught:
        decode_request(payload, 10_000)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_oversize_payload_is_refused_before_decoding() -> None:
    with pytest.raises(RequestError) as caught:
        decode_request(b"x" * 2048, 1024)
    assert caught.value.code == ErrorCode.PAYLOAD_TOO_LARGE
    assert caught.value.details == {"size": 2048, "limit": 1024}


def test_validation_errors_never_echo_the_password() -> None:
    bad = {**GOOD, "devices": [{**GOOD["devices"][0], "port": "s3cret"}]}
    with pytest.raises(RequestError) as caught:
        decode_request(raw(bad), 10_000)
    assert "s3cret" not in str(caught.value) and "s3cret" not in json.dumps(caught.value.details)


def test_device_spec_repr_hides_secrets() -> None:
    spec = DeviceSpec(hostname="r1", username="u", password="s3cret", os="ios", enable_password="en4ble")
    assert "s3cret" not in repr(spec) and "en4ble" not in repr(spec)


def test_parsed_dicts_with_integer_keys_encode() -> None:
    result = CommandResult(command="show ip route", success=True, parsed={"routes": {1: {"next_hop": "x"}}})
    assert json.loads(encode(result))["parsed"] == {"routes": {"1": {"next_hop": "x"}}}


def test_encoder_falls_back_for_sets_and_odd_scalars() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert msgspec.json.decode(encode({"a": {3}, "b": Odd()})) == {"a": [3], "b": "odd"}


@pytest.mark.parametrize(
    ("device_field", "path"),
    [("pasword", "$.devices[0].pasword"), ("enable", "$.devices[0].enable")],
)
def test_a_mistyped_field_is_reported_at_its_own_path(device_field: str, path: str) -> None:
    bad = {**GOOD, "devices": [{**GOOD["devices"][0], device_field: "x"}]}
    with pytest.raises(RequestError) as caught:
        decode_request(raw(bad), 10_000)
    assert caught.value.details["path"] == path
    assert [p["path"] for p in caught.value.details["problems"]] == [path]


def test_every_problem_of_a_request_is_listed() -> None:
    bad = {"devices": [], "extra": 1, "timeout": "soon"}
    with pytest.raises(RequestError) as caught:
        decode_request(raw(bad), 10_000)
    paths = {p["path"] for p in caught.value.details["problems"]}
    assert paths == {"$.devices", "$.commands", "$.extra", "$.timeout"}
    assert all(path in caught.value.message for path in paths)


def test_a_missing_field_inside_a_device_is_reported_there() -> None:
    bad = {**GOOD, "commands": [{"pipe_option": "include"}]}
    with pytest.raises(RequestError) as caught:
        decode_request(raw(bad), 10_000)
    assert caught.value.details["path"] == "$.commands[0].command"


def test_a_decode_error_keeps_the_body_s_request_id_when_usable() -> None:
    for request_id, kept in (("req-42", True), ("bad id!", False), (7, False)):
        with pytest.raises(RequestError) as caught:
            decode_request(raw({**GOOD, "extra": 1, "request_id": request_id}), 10_000)
        assert ("request_id" in caught.value.details) is kept
