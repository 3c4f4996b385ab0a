"""A registry like ACR for tests: Distribution over TLS (a CA made here) with htpasswd auth.

``tls_registry`` (session fixture) runs the stack's ``docker-registry`` binary a second time with
a server certificate signed by a throw-away CA and htpasswd (bcrypt) authentication for one user
with a random password. It is reached by a host name, ``registry.buildctl.test``, that an
/etc/hosts entry (added for the session, removed after) points at ::1. buildx speaks plain HTTP to
registries *named* by a loopback address or ``localhost``, and dockerd falls back to plain HTTP for
names that resolve into 127.0.0.0/8 (its default insecure range) — hiding a 401 behind a 400 —
while ACR is TLS, always. IPv6 loopback is neither, and the traffic never leaves the host.

The CA is trusted the way a private CA is in production: /etc/docker/certs.d/HOST:PORT/ca.crt for
dockerd and BuildKit (removed at teardown), SSL_CERT_FILE for the Go `docker buildx imagetools`
client and buildctl's own (httpx). Every CLI run gets its own DOCKER_CONFIG, so the machine's
docker login state is never touched.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.helpers.manifest_lookup import manifest_digest

CERTS_D = Path("/etc/docker/certs.d")
USER = "buildctl-sp"  # what an ACR service principal's application id is to docker: a user name


@dataclass(frozen=True)
class TlsRegistry:
    address: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    username: str
    password: str = field(repr=False)

    def env(self, docker_config: Path, *, password: str | None = None) -> dict[str, str]:
        """What a CI job sets: credentials, the private CA for the Go and Python clients, and a
        docker config of its own."""
        return {"BUILDCTL_REGISTRY_USERNAME": self.username,
                "BUILDCTL_REGISTRY_PASSWORD": self.password if password is None else password,
                "SSL_CERT_FILE": str(self.ca_file), "DOCKER_CONFIG": str(docker_config)}

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def resolve(self, repository: str, reference: str, *, address: str | None = None) -> str | None:
        """The digest ``repository:reference`` has in the registry (None if absent), read over TLS."""
        return manifest_digest(f"https://{address or self.address}/v2/{repository}/manifests/{reference}",
                               auth=(self.username, self.password), verify=self.ssl_context())


def free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


HOSTNAME = "registry.buildctl.test"  # .test is reserved (RFC 2606): it can never be a real host
LOOPBACK_IP = "::1"
HOSTS_FILE = Path("/etc/hosts")


@contextmanager
def hosts_entry(ip: str, name: str) -> Iterator[None]:
    """``ip name`` in /etc/hosts for the session (dockerd, BuildKit and buildx read it), then gone."""
    line = f"{ip} {name}  # buildctl tests\n"
    original = HOSTS_FILE.read_text()
    HOSTS_FILE.write_text(original + ("" if original.endswith("\n") else "\n") + line)
    try:
        yield
    finally:
        HOSTS_FILE.write_text("".join(k for k in HOSTS_FILE.read_text().splitlines(keepends=True) if k != line))


def make_certificates(directory: Path, ip: str, hostname: str = HOSTNAME) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for ``ip``, 127.0.0.1 and localhost: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("buildctl test CA")).issuer_name(_name("buildctl test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(hostname), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(ip)),
             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(_name(ip)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


@contextmanager
def docker_trusts(address: str, ca_file: Path) -> Iterator[None]:
    """Put ``ca_file`` where dockerd and BuildKit read it for ``address``; remove it afterwards."""
    folder = CERTS_D / address
    folder.mkdir(parents=True, exist_ok=False)  # a leftover of ours or someone's: do not clobber it
    try:
        shutil.copyfile(ca_file, folder / "ca.crt")
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        try:
            CERTS_D.rmdir()  # only if we made it and nothing else is in it
        except OSError:
            pass


@contextmanager
def run_tls_registry(directory: Path, *, ip: str, storage: Path) -> Iterator[TlsRegistry]:
    ca, cert, key = make_certificates(directory, ip)
    password = secrets.token_urlsafe(18)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()  # Distribution: bcrypt only
    (directory / "htpasswd").write_text(f"{USER}:{hashed}\n")
    port = free_port(ip)
    listen, address = (f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"), f"{HOSTNAME}:{port}"
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": listen, "secret": secrets.token_hex(16), "tls": {"certificate": str(cert), "key": str(key)}},
        "auth": {"htpasswd": {"realm": "buildctl-acr-like", "path": str(directory / "htpasswd")}},
    }
    (directory / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = directory / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(directory / "config.yml")], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"https://{address}/v2/", verify=ssl.create_default_context(cafile=str(ca)),
                             timeout=1).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"TLS registry on {address} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        with docker_trusts(address, ca):
            yield TlsRegistry(address, ca, cert, key, USER, password)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


@pytest.fixture(scope="session", name="tls_registry")
def tls_registry_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistry]:
    directory = tmp_path_factory.mktemp("tls-registry")
    with hosts_entry(LOOPBACK_IP, HOSTNAME), \
            run_tls_registry(directory, ip=LOOPBACK_IP, storage=directory / "storage") as registry:
        yield registry
