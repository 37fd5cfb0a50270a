from __future__ import annotations

import time
from pathlib import Path

import pytest

from service.domain.models import DeviceOS
from service.domain.redaction import DEFAULT_REDACTOR, DEFAULT_RULES, MARKER, Redactor

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).parent / "redaction_corpus"

# Every secret written into each corpus file, once each, and the rule kinds that must find them.
PLANTED: dict[DeviceOS, tuple[str, ...]] = {
    DeviceOS.IOS: (
        "$9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7qFm4v7pqCxkKM",
        "094F471A1A0A464058",
        "13061E010803557878",
        "$1$mERr$hx5rVt7rPNoS4wqbXKX7m0",
        "0822455D0A165445415F",
        "Br4nchVpnK3y!",
        "045802150C2E1D1C5A",
        "060506324F41584B56",
        "1511021F07257A767B",
        "01100F17580457",
        "110A1016141D5A5E57",
        "Rtr0Comm",
        "Rtr0Write",
        "TrapC0mm",
        "V1TrapComm",
        "02050D4808095E731F1A",
        "104D000A0618",
        "121A0C041104",
        "14141B180F0B",
    ),
    DeviceOS.IOSXE: (
        "$9$4Jr7Lq1p0Hc8mk$w5ZzZJ0J3nKQm4Wy0qpx6rRjzUJ8l1HuT2sV9bC0aEo",
        "00071A150754",
        "070C285F4D06485744",
        "$9$aQ3tKx5Ws1h0Ym$H3d3J1JkG9xXv2mZ0uR0lUO9pZ3bN7uYc6hGq2W8kTs",
        "R3adOnlyPl41n",
        "HubL0calPSK",
        "HubR3motePSK",
        "L3gacyKeyr1ng",
        "02050D48080956",
        "C4mpusR0",
        "C4mpusTraps",
        "104D580A061843595F",
        "06070D22484F0A1B0D1C",
        "13351601181B0B382F",
        "0457050A0C2F",
        "Vty5Plaintext",
        "0822455D0A16",
    ),
    DeviceOS.NXOS: (
        "$5$KMNOPQ$Hh9yX0aJp3wQ2rL8vT5mZ1cB7nD4eF6gS0iU2oY8kW.",
        "$5$ABCDEF$u7Tq1Zr9Lk3Mx5Nc0Vb2Hj6Gf8Ds4Ap.Qw3Er5Ty7Ui",
        "Qrzsm4!Bmv",
        "Htcfpw8Kx",
        "Fwfgwsw5Ab",
        "0x8f2a4cbd1e7f3a90c6d5b2e1f0a9c8d7",
        "0x3c1b9e7d5a2f4c6e8b0d1f3a5c7e9b2d",
        "0x1a2b3c4d5e6f708192a3b4c5d6e7f809",
        "0x9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "LeafTr4ps",
        "L3afR0",
        "L3afRW",
        "Lqfjn3Xx",
        "070c285f4d064b",
        "Xpkxnfhrd1",
        "9125d59c18a9b015",
        "b4e1c3d7a2f09e68",
        "7b0a8d2c4f9e1a36",
        "c1d4e6f8a0b2c3d5",
    ),
    DeviceOS.IOSXR: (
        "$6$Zq8Kd/3mG1aPb/0.$r7Yp2Tq9Lk4Mx6Nc1Vb3Hj5Gf7Ds9Ap0Qw2Er4Ty6Ui8Op1As3Df5Gh7Jk9Lz0Xc2Vb4Nm6Qw8Er0Ty2Ui4",
        "1511021F0725",
        "$1$Lg7v$Wq2Er4Ty6Ui8Op0As2Df4/",
        "0832495D1A1F120E1C",
        "1218131E0A1C0D0B33",
        "0355085A1A2B3F4E",
        "XrR3adOnly",
        "045A0F0B062F",
        "110A1016141D",
        "02050D480809",
        "070C285F4D06",
        "01100F175804575D72",
        "13061E0108035578",
        "0822455D0A16",
        "094F471A1A0A",
        "104D000A0618",
    ),
    DeviceOS.ASA: (
        "$sha512$5000$hW3Ydm5x7fSeaW5fhoqQtA==$a4Y8Nqz1Y0w8vVfYwVjz1Q==",
        "2KFQnbNIdI.2KYOU",
        "Is3RadiusKey",
        "AsaTr4pComm",
        "AsaR0Comm",
        "$sha512$5000$Yq0tW1r8Zx3cVb5nMm7kLg==$9sDf8Gh7Jk6Lz5Xc4Vb3Nm==",
        "Hd8Lm2Qz9Rt4Vb1N",
        "S2sIkev1Psk",
        "S2sLocalPsk",
    ),
}

EXPECTED_KINDS: dict[DeviceOS, frozenset[str]] = {
    DeviceOS.IOS: frozenset(
        {
            "enable_secret",
            "key_string",
            "username_secret",
            "isakmp_key",
            "ospf_key",
            "protocol_password",
            "bgp_password",
            "snmp_community",
            "aaa_key",
            "ntp_key",
            "line_password",
        }
    ),
    DeviceOS.IOSXE: frozenset(
        {
            "enable_secret",
            "aaa_key",
            "key_string",
            "username_secret",
            "pre_shared_key",
            "ospf_key",
            "snmp_community",
            "line_password",
            "ntp_key",
        }
    ),
    DeviceOS.NXOS: frozenset(
        {
            "username_secret",
            "aaa_key",
            "snmp_user",
            "snmp_community",
            "ntp_key",
            "key_string",
            "ospf_key",
            "line_password",
        }
    ),
    DeviceOS.IOSXR: frozenset(
        {
            "line_password",
            "aaa_key",
            "snmp_community",
            "snmp_user",
            "ntp_key",
            "key_string",
            "protocol_password",
            "ospf_key",
        }
    ),
    DeviceOS.ASA: frozenset(
        {"enable_secret", "line_password", "aaa_key", "snmp_community", "username_secret", "pre_shared_key"}
    ),
}


def corpus(os: DeviceOS) -> str:
    return (CORPUS / f"{os.value}.txt").read_text()


@pytest.mark.parametrize("os", list(DeviceOS))
def test_corpus_is_realistic_and_plants_each_secret_once(os: DeviceOS) -> None:
    text = corpus(os)
    assert len(text.splitlines()) >= 80
    for secret in PLANTED[os]:
        assert text.count(secret) == 1, secret


@pytest.mark.parametrize("os", list(DeviceOS))
def test_corpus_loses_every_secret_and_nothing_else(os: DeviceOS) -> None:
    original = corpus(os)
    result = DEFAULT_REDACTOR.redact(os, original)

    leaked = [secret for secret in PLANTED[os] if secret in result.text]
    assert leaked == []
    before, after = original.splitlines(), result.text.splitlines()
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        expected = old
        for secret in PLANTED[os]:
            expected = expected.replace(secret, MARKER)
        assert new == expected
    assert result.kinds == EXPECTED_KINDS[os]
    assert result.count == len(PLANTED[os])


@pytest.mark.parametrize("os", list(DeviceOS))
def test_redacting_twice_changes_nothing_more(os: DeviceOS) -> None:
    once = DEFAULT_REDACTOR.redact(os, corpus(os))
    twice = DEFAULT_REDACTOR.redact(os, once.text)
    assert twice.text == once.text
    assert twice.count == 0
    assert twice.kinds == frozenset()


@pytest.mark.parametrize(
    ("os", "line", "expected", "kind"),
    [
        (DeviceOS.IOS, "enable secret 9 $9$abc$def", "enable secret 9 <redacted>", "enable_secret"),
        (DeviceOS.IOS, "enable secret 5 $1$abc$def", "enable secret 5 <redacted>", "enable_secret"),
        (DeviceOS.IOS, "enable password 7 0822455D", "enable password 7 <redacted>", "enable_secret"),
        (DeviceOS.IOS, "enable password level 5 Plain", "enable password level 5 <redacted>", "enable_secret"),
        (
            DeviceOS.ASA,
            "enable password 8Ry2YjIyt7RRXU24 encrypted",
            "enable password <redacted> encrypted",
            "enable_secret",
        ),
        (
            DeviceOS.IOSXE,
            "username admin privilege 15 secret 5 $1$xyz",
            "username admin privilege 15 secret 5 <redacted>",
            "username_secret",
        ),
        (DeviceOS.IOS, "username bob password 0 Plain1", "username bob password 0 <redacted>", "username_secret"),
        (
            DeviceOS.NXOS,
            "username admin password 5 $5$Ab$Cd  role network-admin",
            "username admin password 5 <redacted>  role network-admin",
            "username_secret",
        ),
        (
            DeviceOS.ASA,
            "username u password Y encrypted privilege 15",
            "username u password <redacted> encrypted privilege 15",
            "username_secret",
        ),
        (DeviceOS.IOS, " password 7 121A0C041104", " password 7 <redacted>", "line_password"),
        (DeviceOS.IOS, " password cisco", " password <redacted>", "line_password"),
        (DeviceOS.IOSXR, " secret 10 $6$ab$cd", " secret 10 <redacted>", "line_password"),
        (DeviceOS.IOSXR, "  password encrypted 104D000A", "  password encrypted <redacted>", "line_password"),
        (DeviceOS.NXOS, "    password 3 7b0a8d2c", "    password 3 <redacted>", "line_password"),
        (DeviceOS.ASA, "passwd 2KFQnbNIdI.2KYOU encrypted", "passwd <redacted> encrypted", "line_password"),
        (DeviceOS.IOS, "snmp-server community S3cr3t RO", "snmp-server community <redacted> RO", "snmp_community"),
        (
            DeviceOS.IOSXR,
            "snmp-server community encrypted 0355 RO",
            "snmp-server community encrypted <redacted> RO",
            "snmp_community",
        ),
        (
            DeviceOS.IOS,
            "snmp-server host 10.1.1.1 version 2c S3cr3t",
            "snmp-server host 10.1.1.1 version 2c <redacted>",
            "snmp_community",
        ),
        (DeviceOS.IOS, "snmp-server host 10.1.1.1 S3cr3t", "snmp-server host 10.1.1.1 <redacted>", "snmp_community"),
        (
            DeviceOS.ASA,
            "snmp-server host inside 10.1.1.1 community S3cr3t version 2c udp-port 162",
            "snmp-server host inside 10.1.1.1 community <redacted> version 2c udp-port 162",
            "snmp_community",
        ),
        (
            DeviceOS.NXOS,
            "snmp-server user admin network-admin auth md5 0xab priv 0xcd localizedkey",
            "snmp-server user admin network-admin auth md5 <redacted> priv <redacted> localizedkey",
            "snmp_user",
        ),
        (
            DeviceOS.IOSXE,
            "snmp-server user u g v3 auth sha AuthPw priv aes 128 PrivPw",
            "snmp-server user u g v3 auth sha <redacted> priv aes 128 <redacted>",
            "snmp_user",
        ),
        (DeviceOS.IOS, "tacacs-server key 7 0822455D0A16", "tacacs-server key 7 <redacted>", "aaa_key"),
        (DeviceOS.IOS, "radius-server key Plain", "radius-server key <redacted>", "aaa_key"),
        (DeviceOS.NXOS, 'tacacs-server key 7 "Qrzsm4"', 'tacacs-server key 7 "<redacted>"', "aaa_key"),
        (
            DeviceOS.IOSXE,
            " server-private 10.1.1.1 key 7 0822",
            " server-private 10.1.1.1 key 7 <redacted>",
            "aaa_key",
        ),
        (DeviceOS.IOSXE, " key 7 104D580A0618", " key 7 <redacted>", "aaa_key"),
        (DeviceOS.ASA, " key Is3Radius", " key <redacted>", "aaa_key"),
        (
            DeviceOS.IOS,
            "crypto isakmp key K3y address 0.0.0.0",
            "crypto isakmp key <redacted> address 0.0.0.0",
            "isakmp_key",
        ),
        (DeviceOS.IOSXE, "  pre-shared-key local Psk1", "  pre-shared-key local <redacted>", "pre_shared_key"),
        (DeviceOS.IOSXE, "  pre-shared-key Psk1", "  pre-shared-key <redacted>", "pre_shared_key"),
        (DeviceOS.ASA, " ikev1 pre-shared-key Psk1", " ikev1 pre-shared-key <redacted>", "pre_shared_key"),
        (DeviceOS.IOS, "  key-string 7 094F471A", "  key-string 7 <redacted>", "key_string"),
        (DeviceOS.IOSXR, "  key-string password 0110", "  key-string password <redacted>", "key_string"),
        (
            DeviceOS.IOS,
            " standby 1 authentication md5 key-string Hsrp1",
            " standby 1 authentication md5 key-string <redacted>",
            "key_string",
        ),
        (DeviceOS.IOS, " ip ospf authentication-key 7 1511", " ip ospf authentication-key 7 <redacted>", "ospf_key"),
        (
            DeviceOS.IOS,
            " ip ospf message-digest-key 1 md5 7 0458",
            " ip ospf message-digest-key 1 md5 7 <redacted>",
            "ospf_key",
        ),
        (
            DeviceOS.IOSXR,
            "   message-digest-key 1 md5 encrypted 0822",
            "   message-digest-key 1 md5 encrypted <redacted>",
            "ospf_key",
        ),
        (
            DeviceOS.IOS,
            " neighbor 10.0.0.1 password 7 110A",
            " neighbor 10.0.0.1 password 7 <redacted>",
            "bgp_password",
        ),
        (
            DeviceOS.IOS,
            "ntp authentication-key 1 md5 104D000A0618 7",
            "ntp authentication-key 1 md5 <redacted> 7",
            "ntp_key",
        ),
        (
            DeviceOS.IOSXR,
            " authentication-key 1 md5 encrypted 070C",
            " authentication-key 1 md5 encrypted <redacted>",
            "ntp_key",
        ),
        (DeviceOS.IOS, " ppp chap password 7 0110", " ppp chap password 7 <redacted>", "protocol_password"),
        (
            DeviceOS.IOSXR,
            " lsp-password hmac-md5 encrypted 1306",
            " lsp-password hmac-md5 encrypted <redacted>",
            "protocol_password",
        ),
        (DeviceOS.IOS, " area-password Isis1", " area-password <redacted>", "protocol_password"),
        (DeviceOS.IOS, "alias exec x $9$saltsalt$hashhash", "alias exec x <redacted>", "hash"),
    ],
)
def test_each_rule_masks_only_the_secret(os: DeviceOS, line: str, expected: str, kind: str) -> None:
    result = DEFAULT_REDACTOR.redact(os, line)
    assert result.text == expected
    assert result.kinds == frozenset({kind})
    assert result.count == expected.count(MARKER)


FALSE_POSITIVES = [
    "interface GigabitEthernet1",
    " description password reset server",
    " description key-string rotation and secret 5 notes",
    "key chain OSPF-KEYS",
    " key 1",
    " key 7",
    "  key 0",
    "service password-encryption",
    "no service password-recovery",
    "aaa authentication login default local",
    "password encryption aes",
    "no password strength-check",
    "password strength-check",
    "username netops passphrase  lifetime 99999 warntime 14 gracetime 3",
    "username admin nopassword",
    " hello-password keychain ISIS-KC",
    " ip ospf authentication message-digest",
    " ip authentication key-chain eigrp 1 EIGRP-KC",
    " rsakeypair TP-self-signed-2271826688",
    "ssh key-exchange group dh-group14-sha256",
    "radius-server dead-criteria time 5 tries 3",
    "snmp-server host 10.50.1.31 informs version 3 priv nmsuser",
    "snmp-server host 10.60.1.30 use-vrf management",
    "Interface              IP-Address      OK? Method Status                Protocol",
    "GigabitEthernet1       10.0.0.1        YES NVRAM  up                    up",
    "Key chain OSPF-KEYS:",
    "    key 1 -- text (encrypted)",
    "-----BEGIN CERTIFICATE-----",
    "MIIDXTCCAkWgAwIBAgIJAKL0UG+mRkmSMA0GCSqGSIb3DQEBCwUAMEUxCzAJBgNV",
    "-----END CERTIFICATE-----",
    " ikev2 remote-authentication pre-shared-key *****",
    " key *****",
    "total cost $5$ per unit",
]


@pytest.mark.parametrize("os", list(DeviceOS))
@pytest.mark.parametrize("line", FALSE_POSITIVES)
def test_ordinary_lines_pass_untouched(os: DeviceOS, line: str) -> None:
    result = DEFAULT_REDACTOR.redact(os, line + "\n")
    assert result.text == line + "\n"
    assert result.count == 0


def test_snmp_host_without_version_is_a_community_only_on_ios() -> None:
    line = "snmp-server host 10.1.1.1 public"
    assert DEFAULT_REDACTOR.redact(DeviceOS.IOSXE, line).text == "snmp-server host 10.1.1.1 <redacted>"
    assert DEFAULT_REDACTOR.redact(DeviceOS.NXOS, line).text == line


def test_private_key_body_is_masked_line_by_line_and_certificates_are_kept() -> None:
    text = (
        "-----BEGIN CERTIFICATE-----\n"
        "MIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGVCb2R5\n"
        "-----END CERTIFICATE-----\n"
        "-----BEGIN RSA PRIVATE KEY-----\n"
        "MIIEowIBAAKCAQEAr4nd0mPr1v4t3K3yL1n3One\n"
        "Zm9vYmFyUHJpdmF0ZUtleUxpbmVUd28xMjM0NTY=\n"
        "-----END RSA PRIVATE KEY-----\n"
    )
    result = DEFAULT_REDACTOR.redact(DeviceOS.IOSXE, text)
    lines = result.text.splitlines()
    assert lines[:3] == text.splitlines()[:3]
    assert lines[3:] == [
        "-----BEGIN RSA PRIVATE KEY-----",
        MARKER,
        MARKER,
        "-----END RSA PRIVATE KEY-----",
    ]
    assert result.kinds == frozenset({"private_key"})
    assert DEFAULT_REDACTOR.redact(DeviceOS.IOSXE, result.text).count == 0


def test_crlf_output_keeps_its_line_endings() -> None:
    text = "enable secret 9 $9$abc$def\r\n key 7 0822\r\n key 1\r\n"
    result = DEFAULT_REDACTOR.redact(DeviceOS.IOS, text)
    assert result.text == "enable secret 9 <redacted>\r\n key 7 <redacted>\r\n key 1\r\n"


def test_an_empty_ruleset_changes_nothing() -> None:
    text = corpus(DeviceOS.IOS)
    result = Redactor(rules=()).redact(DeviceOS.IOS, text)
    assert (result.text, result.count, result.kinds) == (text, 0, frozenset())


def test_every_default_rule_kind_is_exercised_by_a_unit_case() -> None:
    kinds = {rule.kind for rule in DEFAULT_RULES}
    assert kinds == set().union(*EXPECTED_KINDS.values()) | {"snmp_user", "hash", "private_key"}


def test_one_megabyte_of_config_is_redacted_quickly() -> None:
    block = "".join(corpus(os) for os in DeviceOS)
    text = block * (1_000_000 // len(block) + 1)
    started = time.perf_counter()
    result = DEFAULT_REDACTOR.redact(DeviceOS.IOSXE, text)
    elapsed = time.perf_counter() - started
    print(f"redacted {len(text) / 1e6:.2f} MB ({result.count} secrets) in {elapsed * 1000:.1f} ms")
    assert elapsed < 2.0
