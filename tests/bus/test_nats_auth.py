"""The service authenticates to NATS in every supported way, each against a nats-server set up for it.

Modes: user/password, token, nkey seed, credentials file (operator/account/user JWTs signed
here with the nkeys package), TLS with a CA, and mutual TLS. For each: the service becomes
ready and answers ``$SRV.PING.pyats-ro`` over that server; a wrong secret stops start-up with
exit code 2, a message naming NATS and never the secret.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nkeys
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.config import Settings
from service.devtools.local_server import LocalNatsServer, free_port
from service.transport.connection import connect_options
from tests.conftest import ServiceProcess, serve_until_exit

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


# --- nkeys and JWTs (what `nsc` would make) ---


def new_keypair(prefix: int) -> nkeys.KeyPair:
    seed = nkeys.encode_seed(os.urandom(32), prefix).rstrip(b"=")
    return nkeys.from_seed(bytearray(seed))


def seed_of(kp: nkeys.KeyPair) -> str:
    return bytes(kp.seed).decode().rstrip("=")


def public_of(kp: nkeys.KeyPair) -> str:
    key: bytes = kp.public_key
    return key.decode().rstrip("=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_jwt(issuer: nkeys.KeyPair, subject: str, name: str, nats_claims: dict[str, Any]) -> str:
    """A NATS v2 JWT: ed25519-nkey signed, jti the hash of the claims (as the Go library does)."""
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "iss": public_of(issuer),
        "name": name,
        "sub": subject,
        "nats": {**nats_claims, "version": 2},
    }
    digest = hashlib.sha256(json.dumps(claims, separators=(",", ":")).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = issuer.sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{_b64(signature)}"


def creds_file(path: Path, user_jwt: str, user: nkeys.KeyPair) -> Path:
    path.write_text(
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed_of(user)}\n"
        "------END USER NKEY SEED------\n"
    )
    path.chmod(0o600)
    return path


UNLIMITED = {"subs": -1, "data": -1, "payload": -1}


def operator_setup(folder: Path) -> tuple[str, Callable[..., Path]]:
    """Server config lines for operator mode and a maker of user .creds files for its one account."""
    operator = new_keypair(nkeys.PREFIX_BYTE_OPERATOR)
    account = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    operator_jwt = sign_jwt(operator, public_of(operator), "test-operator", {"type": "operator"})
    account_jwt = sign_jwt(
        operator,
        public_of(account),
        "pyats",
        {
            "type": "account",
            "limits": {
                **UNLIMITED,
                "imports": -1,
                "exports": -1,
                "wildcards": True,
                "conn": -1,
                "leaf": -1,
                "mem_storage": -1,
                "disk_storage": -1,
                "streams": -1,
                "consumer": -1,
            },
        },
    )
    system = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)  # JetStream needs a system account in operator mode
    system_jwt = sign_jwt(operator, public_of(system), "SYS", {"type": "account", "limits": {**UNLIMITED}})
    (folder / "operator.jwt").write_text(operator_jwt)
    config = (
        f"operator: {folder / 'operator.jwt'}\n"
        f"system_account: {public_of(system)}\n"
        "resolver: MEMORY\n"
        f'resolver_preload: {{ {public_of(account)}: "{account_jwt}", {public_of(system)}: "{system_jwt}" }}\n'
    )

    def user_creds(name: str, signer: nkeys.KeyPair = account) -> Path:
        user = new_keypair(nkeys.PREFIX_BYTE_USER)
        claims = {"type": "user", "pub": {}, "sub": {}, **UNLIMITED, "issuer_account": public_of(account)}
        return creds_file(folder / f"{name}.creds", sign_jwt(signer, public_of(user), name, claims), user)

    return config, user_creds


# --- certificates ---


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@dataclass
class Authority:
    folder: Path
    name: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=_key)

    def __post_init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_file = _write_cert(self.cert, self.folder / f"{self.name}.pem")

    def issue(self, name: str, server: bool) -> tuple[Path, Path]:
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        return _write_cert(cert, self.folder / f"{name}.pem"), _write_key(key, self.folder / f"{name}.key")


# --- servers and the service ---


@pytest.fixture
def nats_with(tmp_path: Path) -> Iterator[Callable[[str], LocalNatsServer]]:
    started: list[LocalNatsServer] = []

    def start(config: str) -> LocalNatsServer:
        conf = tmp_path / f"nats-{len(started)}.conf"
        conf.write_text(config)
        server = LocalNatsServer(tmp_path / f"nats-{len(started)}", config_file=conf)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def settings_of(env: dict[str, str]) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


async def ping_over(env: dict[str, str]) -> dict[str, Any]:
    """$SRV.PING.pyats-ro with the connect options the service builds from the same settings."""
    options = {**connect_options(settings_of(env), "auth-probe"), "allow_reconnect": False}
    client = await nats.connect(**options)
    try:
        reply = await client.request("$SRV.PING.pyats-ro", b"", timeout=5)
        answer: dict[str, Any] = json.loads(reply.data)
        return answer
    finally:
        await client.close()


async def serves_with(
    service_factory: Callable[..., ServiceProcess], env: dict[str, str], *refusals: Awaitable[str]
) -> list[str]:
    """The service with these settings gets ready and answers a ping; meanwhile the ``refusals``
    (``refused_start`` in a thread) run: most of their time is waiting for NATS to say no.
    One device worker, not one per core: the worker connects with the same settings."""
    service = service_factory(PYATS_DEVICE_WORKERS="1", **env)
    outputs = asyncio.gather(*refusals)
    try:
        await asyncio.to_thread(service.wait_ready)
        assert (await ping_over(env))["name"] == "pyats-ro"
        assert service.stop() == 0
    finally:
        refused = await outputs
    return refused


def refusal(env: dict[str, str], *secrets: str) -> Awaitable[str]:
    """``refused_start`` in a thread, for ``serves_with``."""
    return asyncio.to_thread(refused_start, env, *secrets)


def refused_start(env: dict[str, str], *secrets: str) -> str:
    """Run serve with settings that NATS refuses: exit 2, NATS named, no secret printed."""
    settings = {
        "PYATS_METRICS_PORT": str(free_port()),
        "PYATS_METRICS_HOST": "127.0.0.1",
        "PYATS_NATS_STARTUP_WAIT": "4",
        "PYATS_NATS_CONNECT_TIMEOUT": "2",
        "PYATS_PARSER_PREWARM": "iosxe:show version",
        "PYATS_LOG_LEVEL": "DEBUG",
        **env,
    }
    done = serve_until_exit(settings, timeout=90)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    last = done.stderr.strip().splitlines()[-1]
    print(last)
    assert "NATS" in last, output
    for secret in secrets:
        assert secret not in output
    return output


# --- one test per mode ---


async def test_user_and_password(
    nats_with: Callable[[str], LocalNatsServer], service_factory: Callable[..., ServiceProcess]
) -> None:
    password = "svc-Pw-51x"
    server = nats_with(f'authorization {{ user: service, password: "{password}" }}\n')
    env = {"PYATS_NATS_URL": server.url, "PYATS_NATS_USER": "service", "PYATS_NATS_PASSWORD": password}
    wrong = "not-the-Pw-77"
    [output] = await serves_with(service_factory, env, refusal({**env, "PYATS_NATS_PASSWORD": wrong}, wrong, password))
    assert "Authorization" in output


async def test_token(
    nats_with: Callable[[str], LocalNatsServer], service_factory: Callable[..., ServiceProcess]
) -> None:
    token = "tok-Zq81-secret"
    server = nats_with(f'authorization {{ token: "{token}" }}\n')
    env = {"PYATS_NATS_URL": server.url, "PYATS_NATS_TOKEN": token}
    wrong = "tok-wrong-44"
    await serves_with(service_factory, env, refusal({**env, "PYATS_NATS_TOKEN": wrong}, wrong, token))


async def test_nkey_seed(
    nats_with: Callable[[str], LocalNatsServer], service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    user = new_keypair(nkeys.PREFIX_BYTE_USER)
    seed_file = tmp_path / "service.nk"
    seed_file.write_text(seed_of(user) + "\n")
    seed_file.chmod(0o600)
    server = nats_with(f"authorization {{ users = [ {{ nkey: {public_of(user)} }} ] }}\n")
    env = {"PYATS_NATS_URL": server.url, "PYATS_NATS_NKEY_SEED_FILE": str(seed_file)}
    stranger = new_keypair(nkeys.PREFIX_BYTE_USER)
    other_file = tmp_path / "stranger.nk"
    other_file.write_text(seed_of(stranger))
    wrong = {**env, "PYATS_NATS_NKEY_SEED_FILE": str(other_file)}
    await serves_with(service_factory, env, refusal(wrong, seed_of(stranger), seed_of(user)))


async def test_credentials_file(
    nats_with: Callable[[str], LocalNatsServer], service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    config, user_creds = operator_setup(tmp_path)
    server = nats_with(config)
    creds = user_creds("service")
    env = {"PYATS_NATS_URL": server.url, "PYATS_NATS_CREDENTIALS_FILE": str(creds)}
    # a user signed by an account this server does not know
    forged = user_creds("forged", signer=new_keypair(nkeys.PREFIX_BYTE_ACCOUNT))
    forged_seed = forged.read_text().split("-----BEGIN USER NKEY SEED-----\n")[1].split("\n")[0]
    await serves_with(service_factory, env, refusal({**env, "PYATS_NATS_CREDENTIALS_FILE": str(forged)}, forged_seed))


@pytest.mark.parametrize("scheme", ["tls", "nats"])
async def test_tls_with_a_ca(
    nats_with: Callable[[str], LocalNatsServer],
    service_factory: Callable[..., ServiceProcess],
    tmp_path: Path,
    scheme: str,
) -> None:
    ca = Authority(tmp_path, "test-ca")
    cert, key = ca.issue("nats-server", server=True)
    server = nats_with(f'tls {{ cert_file: "{cert}", key_file: "{key}" }}\n')
    env = {"PYATS_NATS_URL": f"{scheme}://127.0.0.1:{server.port}", "PYATS_NATS_TLS_CA": str(ca.cert_file)}
    other = Authority(tmp_path, "other-ca")  # did not sign the server certificate
    await serves_with(service_factory, env, refusal({**env, "PYATS_NATS_TLS_CA": str(other.cert_file)}))


async def test_mutual_tls(
    nats_with: Callable[[str], LocalNatsServer], service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    ca = Authority(tmp_path, "test-ca")
    cert, key = ca.issue("nats-server", server=True)
    client_cert, client_key = ca.issue("pyats-ro", server=False)
    server = nats_with(
        f'tls {{ cert_file: "{cert}", key_file: "{key}", ca_file: "{ca.cert_file}", verify: true, timeout: 2 }}\n'
    )
    env = {
        "PYATS_NATS_URL": f"tls://127.0.0.1:{server.port}",
        "PYATS_NATS_TLS_CA": str(ca.cert_file),
        "PYATS_NATS_TLS_CERT": str(client_cert),
        "PYATS_NATS_TLS_KEY": str(client_key),
    }
    # no client certificate, and one from a CA the server does not trust
    rogue_cert, rogue_key = Authority(tmp_path, "rogue-ca").issue("rogue-client", server=False)
    await serves_with(
        service_factory,
        env,
        refusal({"PYATS_NATS_URL": env["PYATS_NATS_URL"], "PYATS_NATS_TLS_CA": str(ca.cert_file)}),
        refusal({**env, "PYATS_NATS_TLS_CERT": str(rogue_cert), "PYATS_NATS_TLS_KEY": str(rogue_key)}),
    )
