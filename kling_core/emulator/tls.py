"""A self-signed certificate authority and a server certificate for 127.0.0.1, ::1 and localhost.

fal-client only speaks https. The emulator makes a small CA (``ca.pem``) and signs a server
certificate with it (``server.pem`` / ``server-key.pem``); a client trusts the emulator by
trusting ``ca.pem`` (for httpx-based clients such as fal-client and ours: ``SSL_CERT_FILE``;
for requests: ``REQUESTS_CA_BUNDLE``; for curl: ``--cacert``). The files are kept in the
state folder and reused while valid; the CA key never leaves that folder.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import attrs

from kling_core.files import write_bytes_atomic

VALID_DAYS = 30


@attrs.frozen
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _still_valid(cert_file: Path, days: int = 1) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def ensure_certificate(folder: Path) -> TlsFiles:
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if all(p.is_file() for p in (files.ca, files.cert, files.key)) and _still_valid(files.cert):
        return files
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kling emulate local CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
             x509.IPAddress(ipaddress.ip_address("::1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    write_bytes_atomic(files.key, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()), perms=0o600)
    write_bytes_atomic(files.cert, cert.public_bytes(pem) + ca.public_bytes(pem))
    write_bytes_atomic(files.ca, ca.public_bytes(pem))
    return files
