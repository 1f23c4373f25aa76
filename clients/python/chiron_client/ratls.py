"""Attested TLS (RA-TLS) for Python: fetch chirond's certificate, verify the TEE evidence it
carries under the owner's policy, and only then pin it.

chirond creates a fresh key at every start and serves a self-signed certificate with a
non-critical X.509 extension holding its evidence envelope in a CMW record (docs/attested-tls.md,
docs/formats/evidence.md); the evidence's report data is

    certificate_report_data(spki) = SHA-512("chiron-ratls-cert-v1" 0x00 || SPKI DER)

so it binds the very key the TLS handshake proves. The C++ client checks this inside its gRPC
certificate verifier. gRPC's Python API has no such hook, so this module does it in three steps
(Client.connect in client.py):

 1. fetch_server_certificate(): a TLS 1.3 handshake with Python's `ssl` (presenting the owner's
    certificate, which chirond requires) that only reads the server's certificate DER;
 2. verify_certificate(): extract the evidence and the SPKI, verify the evidence under the
    policy with the report data above (PolicyVerifier runs `chiron evidence verify`, the one
    verifier every Chiron client shares, rather than a second implementation of it);
 3. the gRPC channel trusts exactly that certificate as its only root, so every later handshake
    must be with the same key (a restarted chirond has a new key: connect again).

Freshness is then proved on the pinned channel with GetEvidence over a random nonce, whose
report data is fresh_report_data(nonce, server SPKI, client SPKI).

Thread safety: the functions are pure apart from the network; a PolicyVerifier is immutable.
Errors: AttestationError (nothing was sent to the server), ChironError for local problems.
"""

import hashlib
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .errors import AttestationError, ChironError

# The evidence extension (docs/attested-tls.md): TCG DICE's conceptual message wrapper OID, its
# value a CMW record holding the evidence envelope (src/shared/ratls/evidence_extension.h).
EVIDENCE_EXTENSION_OID = "2.23.133.5.4.9"
EVIDENCE_MEDIA_TYPE = b"application/vnd.chiron.evidence"
CMW_INDICATOR_EVIDENCE = 4
# What chirond used before; recognised only to say why such a certificate is refused.
RETIRED_EVIDENCE_EXTENSION_OID = "2.25.206920740590993702740307435259093383050"
# The name in every chirond certificate; trust never comes from it (gRPC checks it).
SERVER_NAME = "chirond.chiron.invalid"
MAX_EVIDENCE_SIZE = 64 * 1024
MAX_CERTIFICATE_SIZE = 256 * 1024


def certificate_report_data(spki_der):
    """The 64 bytes a chirond certificate's evidence must bind (ratls::CertificateReportData)."""
    return hashlib.sha512(b"chiron-ratls-cert-v1\x00" + bytes(spki_der)).digest()


def fresh_report_data(nonce, server_spki_der, client_spki_der):
    """The 64 bytes GetEvidence's evidence must bind (ratls::FreshReportData): each part
    length-prefixed with a u32 little-endian."""
    data = b"chiron-ratls-fresh-v1\x00"
    for part in (nonce, server_spki_der, client_spki_der):
        data += struct.pack("<I", len(part)) + bytes(part)
    return hashlib.sha512(data).digest()


def _der_oid(dotted):
    """The DER encoding (tag, length, arcs) of an OBJECT IDENTIFIER given as "1.2.3"."""
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for value in [arcs[0] * 40 + arcs[1]] + arcs[2:]:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        body += bytes(reversed(chunk))
    return bytes([0x06, len(body)]) + bytes(body)


def decode_evidence_extension(value):
    """The evidence envelope inside the extension's value, a RATS Conceptual Message Wrapper
    (CBOR array of 3: text type "application/vnd.chiron.evidence", byte string evidence, the
    indicator 4 = Evidence), accepted only in the shortest-form encoding chirond writes
    (src/shared/ratls/evidence_extension.h). Raises AttestationError naming the wrong part,
    never echoing the peer's bytes."""
    value = bytes(value)

    def fail(what):
        raise AttestationError("the server's certificate evidence extension: %s" % what)

    def head(pos, major):
        if pos >= len(value) or value[pos] >> 5 != major:
            fail("not a Chiron evidence record (CMW)")
        info = value[pos] & 0x1F
        if info < 24:
            return info, pos + 1
        sizes = {24: 1, 25: 2, 26: 4}
        if info not in sizes or pos + 1 + sizes[info] > len(value):
            fail("a length is malformed")
        length = int.from_bytes(value[pos + 1:pos + 1 + sizes[info]], "big")
        if length < (24 if info == 24 else 1 << (8 * sizes[info] // 2)):
            fail("a length is not in shortest form")
        return length, pos + 1 + sizes[info]

    count, pos = head(0, 4)
    if count != 3:
        fail("not a Chiron evidence record (CMW)")
    length, pos = head(pos, 3)
    if value[pos:pos + length] != EVIDENCE_MEDIA_TYPE:
        fail("the type is not Chiron evidence")
    length, pos = head(pos + length, 2)
    if length > MAX_EVIDENCE_SIZE:
        fail("the evidence is larger than the 64 KiB limit")
    if pos + length > len(value):
        fail("the evidence is truncated")
    evidence = value[pos:pos + length]
    pos += length
    if value[pos:pos + 1] != bytes([CMW_INDICATOR_EVIDENCE]):
        fail("the indicator is not Evidence")
    if pos + 1 != len(value):
        fail("trailing bytes after the record")
    return evidence


def parse_certificate(der):
    """(spki_der, evidence envelope) of chirond's DER certificate, parsed with Python
    `cryptography`.

    Raises AttestationError: not X.509, no evidence extension (not a Chiron runtime), the
    retired evidence OID (an older chirond), or a malformed extension."""
    der = bytes(der)
    if len(der) > MAX_CERTIFICATE_SIZE:
        raise AttestationError("the server's certificate is larger than any chirond certificate")
    try:
        certificate = x509.load_der_x509_certificate(der)
        extensions = certificate.extensions
    except ValueError:
        if _der_oid(RETIRED_EVIDENCE_EXTENSION_OID) in der:
            raise AttestationError(_OLDER_RELEASE)
        raise AttestationError("the server's certificate is not well-formed X.509")
    oids = [extension.oid.dotted_string for extension in extensions]
    if oids.count(EVIDENCE_EXTENSION_OID) > 1:
        raise AttestationError("the server's certificate has two evidence extensions")
    if EVIDENCE_EXTENSION_OID not in oids:
        if RETIRED_EVIDENCE_EXTENSION_OID in oids:
            raise AttestationError(_OLDER_RELEASE)
        raise AttestationError(
            "the server's certificate has no Chiron evidence extension: it is not an attested "
            "Chiron runtime (check the server address)")
    extension = extensions.get_extension_for_oid(
        x509.ObjectIdentifier(EVIDENCE_EXTENSION_OID)).value
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return spki, decode_evidence_extension(extension.value)


_OLDER_RELEASE = ("the server's certificate carries its evidence under the retired extension "
                  "OID: it runs an older Chiron release, which this client does not accept; "
                  "upgrade chirond")


def fetch_server_certificate(host, port, identity, timeout=10.0):
    """The DER certificate chirond presents at host:port, read with a TLS 1.3 handshake in which
    the owner's own certificate is presented (chirond requires one). Nothing is trusted here: the
    caller must verify the result before sending anything.

    Raises ChironError (Unavailable-like) if the server cannot be reached."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # trust comes from the evidence, checked next
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory(prefix="chiron-tls-") as directory:
        key_path = os.path.join(directory, "key.pem")
        cert_path = os.path.join(directory, "cert.pem")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as key_file:
            key_file.write(identity.key_pem)
        with open(cert_path, "wb") as cert_file:
            cert_file.write(identity.cert_pem)
        context.load_cert_chain(cert_path, key_path)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as error:
        raise ChironError("connect to %s:%s: %s (is chirond running at that address?)" %
                          (host, port, error))
    if not der:
        raise AttestationError("the server at %s:%s presented no certificate" % (host, port))
    return der


class PolicyVerifier:
    """Verifies Chiron evidence under an attestation policy file (docs/formats/policy.md) by
    running `chiron evidence verify FILE --policy POLICY --report-data HEX --json`.

    `chiron`: the CLI's path; default $CHIRON_CLI, else `chiron` on PATH. The CLI runs with an
    empty CHIRON_HOME so no profile of the user's changes what is checked."""

    def __init__(self, policy_path, chiron=None, timeout=60.0):
        if not os.path.isfile(policy_path):
            raise ChironError("attestation policy %s does not exist: pass the policy file "
                              "chirond's operator published (docs/formats/policy.md)" % policy_path)
        self.policy_path = os.path.abspath(policy_path)
        self.chiron = chiron or os.environ.get("CHIRON_CLI") or shutil.which("chiron")
        if not self.chiron or not os.access(self.chiron, os.X_OK):
            raise ChironError("the `chiron` command-line tool is needed to verify evidence: put "
                              "it on PATH or pass chiron=/path/to/chiron (or set CHIRON_CLI)")
        self.timeout = timeout

    def verify(self, evidence, report_data):
        """The verified claims (a dict: platform, measurement, debug, svn, simulated, warnings,
        ...) of `evidence` that must bind the 64 bytes `report_data`.

        Raises AttestationError naming the failed check."""
        if len(evidence) > MAX_EVIDENCE_SIZE:
            raise AttestationError("the server's evidence is larger than the 64 KiB limit")
        with tempfile.TemporaryDirectory(prefix="chiron-evidence-") as directory:
            path = os.path.join(directory, "evidence.bin")
            with open(path, "wb") as evidence_file:
                evidence_file.write(evidence)
            env = dict(os.environ, CHIRON_HOME=os.path.join(directory, "no-profile"))
            try:
                run = subprocess.run(
                    [self.chiron, "evidence", "verify", path, "--policy", self.policy_path,
                     "--report-data", bytes(report_data).hex(), "--json"],
                    stdin=subprocess.DEVNULL, capture_output=True, env=env,
                    timeout=self.timeout)
            except (OSError, subprocess.TimeoutExpired) as error:
                raise ChironError("cannot run %s: %s" % (self.chiron, error))
        if run.returncode != 0:
            lines = [l for l in run.stderr.decode("utf-8", "replace").splitlines() if l.strip()]
            reason = lines[0] if lines else "exit code %d" % run.returncode
            if reason.startswith("chiron: "):
                reason = reason[len("chiron: "):]
            raise AttestationError("the server's evidence failed the policy %s: %s" %
                                   (self.policy_path, reason))
        try:
            claims = json.loads(run.stdout)
        except ValueError:
            raise ChironError("%s printed no JSON claims" % self.chiron)
        # Defence in depth: the claims must say verified, over exactly our report data.
        if claims.get("verified") is not True or \
                claims.get("report_data", "").lower() != bytes(report_data).hex():
            raise AttestationError("the verifier did not confirm the expected report data")
        return claims


def verify_certificate(der, verifier):
    """(claims, spki_der) for chirond's certificate: its evidence verified under `verifier` with
    report data binding the certificate's own key.

    Raises AttestationError: parse_certificate's reasons, or the verifier's."""
    spki, evidence = parse_certificate(der)
    claims = verifier.verify(evidence, certificate_report_data(spki))
    return claims, spki
