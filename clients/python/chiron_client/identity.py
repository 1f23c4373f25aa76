"""The owner's identity: an ECDSA P-256 key and a self-signed certificate for mutual TLS.

chirond names every principal by the hex SHA-256 of its key's SubjectPublicKeyInfo, so the key is
the identity; the certificate only carries it into the TLS handshake (as ratls::
CreateClientIdentity makes it: self-signed, no evidence). The key file is the one `chiron init`
writes into a profile directory (`principal.key`, PKCS#8 DER, mode 0600), so a Python session and
the `chiron` CLI can act as the same owner.

Thread safety: an Identity is an immutable value.
"""

import datetime
import hashlib
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .errors import ChironError

KEY_FILE = "principal.key"


class Identity:
    """An owner's key (never leaves this machine) and its self-signed TLS certificate."""

    def __init__(self, private_key, common_name="chiron-client"):
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or \
                private_key.curve.name != "secp256r1":
            raise ChironError("a Chiron principal key must be ECDSA P-256")
        self._key = private_key
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.utcnow()
        certificate = (x509.CertificateBuilder()
                       .subject_name(name).issuer_name(name)
                       .public_key(private_key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(minutes=5))
                       .not_valid_after(now + datetime.timedelta(days=3650))
                       .sign(private_key, hashes.SHA256()))
        self.cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
        self.key_pem = private_key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption())
        self.spki_der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        # How chirond names this principal (ratls::PrincipalId).
        self.principal_id = hashlib.sha256(self.spki_der).hexdigest()

    @classmethod
    def generate(cls):
        """A fresh identity held only in memory (a one-off session)."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load_or_create(cls, directory):
        """The identity whose key is DIRECTORY/principal.key, created (0600, directory 0700) if
        there is none. A `chiron init` profile directory works as is.

        Raises ChironError if the key file is unreadable, malformed, or readable by others."""
        path = os.path.join(directory, KEY_FILE)
        if not os.path.exists(path):
            os.makedirs(directory, mode=0o700, exist_ok=True)
            key = ec.generate_private_key(ec.SECP256R1())
            der = key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as key_file:
                key_file.write(der)
            return cls(key)
        if os.stat(path).st_mode & 0o077:
            raise ChironError("%s is readable by other users: chmod 600 it (anyone who reads it "
                              "can act as this owner)" % path)
        with open(path, "rb") as key_file:
            data = key_file.read()
        try:
            key = serialization.load_der_private_key(data, password=None)
        except ValueError as error:
            raise ChironError("%s is not a PKCS#8 DER private key (%s)" % (path, error))
        return cls(key)
