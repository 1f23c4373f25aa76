"""Python's X.509 parser reads a Chiron runtime certificate and finds its evidence.

Run by ctest as:  /usr/bin/python3 ratls_certificate_test.py PATH/TO/ratls_certificate_writer

The writer makes a certificate as chirond does (sim TEE platform, ratls::CreateAttestedIdentity)
and prints what the C++ side embedded. This test loads the PEM with Debian's python3-cryptography
(`x509.load_pem_x509_certificate`), finds the evidence extension by its OID (2.23.133.5.4.9) and
checks, byte for byte: the extension value, the CMW record inside it (docs/attested-tls.md), the
evidence envelope inside that, and that the evidence binds the certificate's own key
(CertificateReportData). Releases before the CMW encoding used a 2.25.<128-bit> OID that this
parser refused to load at all ("ParseError InvalidValue at Extension::extn_id").
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

WRITER = None  # set from argv in main

EVIDENCE_OID = x509.ObjectIdentifier("2.23.133.5.4.9")
MEDIA_TYPE = "application/vnd.chiron.evidence"


def cbor_head(data, at, expected_major):
    """Reads a definite CBOR head; returns (argument, next offset)."""
    initial = data[at]
    major, info = initial >> 5, initial & 0x1F
    if major != expected_major:
        raise ValueError("CBOR major type %d, expected %d" % (major, expected_major))
    if info < 24:
        return info, at + 1
    size = {24: 1, 25: 2, 26: 4, 27: 8}[info]
    return int.from_bytes(data[at + 1:at + 1 + size], "big"), at + 1 + size


def decode_cmw_record(data):
    """The CBOR CMW record [type, value, ind] (draft-ietf-rats-msg-wrap), parsed independently."""
    if data[0] not in (0x82, 0x83):
        raise ValueError("not a CBOR array of 2 or 3 items")
    at = 1
    type_size, at = cbor_head(data, at, 3)
    media_type = data[at:at + type_size].decode("utf-8")
    at += type_size
    value_size, at = cbor_head(data, at, 2)
    value = data[at:at + value_size]
    at += value_size
    indicator = None
    if data[0] == 0x83:
        indicator, at = cbor_head(data, at, 0)
    if at != len(data):
        raise ValueError("bytes after the record")
    return media_type, value, indicator


class RatlsCertificateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="chiron-ratls-python-")
        pem_path = os.path.join(cls.dir.name, "chirond.pem")
        state = os.path.join(cls.dir.name, "state")
        os.mkdir(state)
        run = subprocess.run([WRITER, pem_path, state], capture_output=True, text=True,
                             timeout=30, check=False)
        if run.returncode != 0:
            raise RuntimeError("ratls_certificate_writer failed: " + run.stderr)
        cls.embedded = json.loads(run.stdout)
        with open(pem_path, "rb") as f:
            cls.pem = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def load(self):
        return x509.load_pem_x509_certificate(self.pem)

    def test_cryptography_parses_the_certificate(self):
        cert = self.load()
        self.assertEqual(cert.version, x509.Version.v3)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertIn("chirond.chiron.invalid", names.get_values_for_type(x509.DNSName))
        # Self-signed by the key the evidence binds.
        cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                 ec.ECDSA(cert.signature_hash_algorithm))
        self.assertIsInstance(cert.signature_hash_algorithm, hashes.SHA256)

    def test_extension_found_by_oid_holds_the_embedded_bytes(self):
        cert = self.load()
        self.assertEqual(self.embedded["oid"], EVIDENCE_OID.dotted_string)
        extension = cert.extensions.get_extension_for_oid(EVIDENCE_OID)
        self.assertFalse(extension.critical)
        self.assertIsInstance(extension.value, x509.UnrecognizedExtension)
        self.assertEqual(extension.value.value, bytes.fromhex(self.embedded["extension_value_hex"]))

    def test_extension_is_a_cmw_record_of_chiron_evidence(self):
        value = self.load().extensions.get_extension_for_oid(EVIDENCE_OID).value.value
        media_type, evidence, indicator = decode_cmw_record(value)
        self.assertEqual(media_type, MEDIA_TYPE)
        self.assertEqual(media_type, self.embedded["media_type"])
        self.assertEqual(indicator, 4)  # CMW indicator: Evidence
        self.assertEqual(evidence, bytes.fromhex(self.embedded["evidence_hex"]))
        # The evidence envelope (docs/formats/evidence.md): "CHEV", version 1, platform 1 (sim).
        self.assertEqual(evidence[:4], b"CHEV")
        self.assertEqual(int.from_bytes(evidence[4:6], "little"), 1)
        self.assertEqual(int.from_bytes(evidence[6:8], "little"), 1)
        self.assertEqual(int.from_bytes(evidence[8:12], "little"), len(evidence) - 12)

    def test_evidence_binds_the_certificate_key(self):
        cert = self.load()
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        self.assertEqual(spki, bytes.fromhex(self.embedded["spki_hex"]))
        # CertificateReportData = SHA-512("chiron-ratls-cert-v1" 0x00 || SPKI DER), recomputed here.
        report_data = hashlib.sha512(b"chiron-ratls-cert-v1\x00" + spki).digest()
        self.assertEqual(report_data, bytes.fromhex(self.embedded["report_data_hex"]))
        _, evidence, _ = decode_cmw_record(
            cert.extensions.get_extension_for_oid(EVIDENCE_OID).value.value)
        # Sim body after the 12-byte envelope header: version u16, platform u16, measurement 48,
        # then the 64 bytes of report data.
        self.assertEqual(evidence[12 + 4 + 48:12 + 4 + 48 + 64], report_data)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: ratls_certificate_test.py PATH/TO/ratls_certificate_writer")
    WRITER = sys.argv.pop(1)
    unittest.main(verbosity=2)
