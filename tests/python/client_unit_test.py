"""The Python owner client's formats, without a server.

- The dataset container against the layout published in docs/formats/dataset.md and
  docs/formats/aead-stream.md: every header field at its offset, keys from HKDF as written there,
  the header tag, and each chunk opened with one-shot AES-GCM under the nonce and associated data
  the page spells out (written here from the page, not from the client's code).
- The evidence extension's CMW record decoder on well-formed and malformed input.
- The audit chain verifier on altered, removed, reordered, foreign and rolled-back records.

Run by ctest (python_client_unit_test) with PYTHONPATH=clients/python:build/python.
"""

import hashlib
import hmac
import json
import os
import struct
import subprocess
import tempfile
import unittest

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chiron_client import AttestationError, AuditChainError, ChironError, Identity
from chiron_client import _stubs as pb
from chiron_client import arrays, audit, ratls
from chiron_client.container import ContainerWriter, ELEMENT_U8, Schema


def hkdf(key, salt, info, size):
    return HKDF(algorithm=hashes.SHA256(), length=size, salt=salt, info=info).derive(key)


class ContainerLayoutTest(unittest.TestCase):
    def test_header_and_chunks_follow_the_published_layout(self):
        rng = np.random.default_rng(7)
        images = rng.integers(0, 256, size=(2700, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=2700)
        schema, records, _ = arrays.prepare_dataset(images, labels, [str(i) for i in range(10)])
        key, dataset_id, prefix = os.urandom(32), os.urandom(16), os.urandom(7)
        writer = ContainerWriter(schema, key, dataset_id, prefix)
        header = writer.header

        # Header fields (dataset.md, "Header").
        self.assertEqual(header[0:8], b"CHIRONDS")
        self.assertEqual(struct.unpack("<H", header[8:10])[0], 1)
        header_size = struct.unpack("<I", header[10:14])[0]
        self.assertEqual(header_size, len(header))
        self.assertEqual(header[14:30], dataset_id)
        self.assertEqual(header[30:46], hkdf(key, dataset_id, b"chiron dataset v1 key check", 16))
        # 1 MiB of whole 785-byte records per chunk: 1,335 (the page's Fashion-MNIST figure).
        samples_per_chunk = struct.unpack("<I", header[46:50])[0]
        self.assertEqual(samples_per_chunk, 1335)
        self.assertEqual(writer.chunk_count, 3)
        # Schema: u8, rank 2, 28 x 28, u8 labels, 10 classes "0".."9", then the sample count.
        expected_schema = struct.pack("<BBIIBI", 1, 2, 28, 28, 1, 10)
        expected_schema += b"".join(struct.pack("<B", 1) + str(i).encode() for i in range(10))
        expected_schema += struct.pack("<Q", 2700)
        self.assertEqual(header[50:header_size - 39], expected_schema)
        self.assertEqual(header[header_size - 39:header_size - 32], prefix)
        mac_key = hkdf(key, dataset_id, b"chiron dataset v1 header mac key", 32)
        self.assertEqual(header[header_size - 32:],
                         hmac.new(mac_key, header[:header_size - 32], hashlib.sha256).digest())

        # Chunks (aead-stream.md, "Chunk i of n"), opened with one-shot AES-GCM.
        body = header[:header_size - 39]
        aead = AESGCM(hkdf(key, dataset_id, b"chiron dataset v1 chunk key", 32))
        total = len(header)
        for index in range(writer.chunk_count):
            count = min(1335, 2700 - index * 1335)
            plain = records(index * 1335, count)
            sealed = writer.seal_chunk(index, plain)
            total += len(sealed)
            self.assertEqual(len(sealed), count * 785 + 16)
            last = 1 if index == writer.chunk_count - 1 else 0
            nonce = prefix + struct.pack(">I", index) + bytes([last])
            aad = (b"chiron aead-stream v1" + struct.pack(">Q", len(body)) + body +
                   struct.pack(">I", index) + bytes([last]))
            self.assertEqual(aead.decrypt(nonce, sealed, aad), plain)
            # Each record is label || sample, the sample row-major.
            first = index * 1335
            self.assertEqual(plain[0], labels[first])
            self.assertEqual(plain[1:785], images[first].tobytes())
            # Presented at another index, or with the last flag flipped, it does not open.
            with self.assertRaises(Exception):
                aead.decrypt(prefix + struct.pack(">I", index) + bytes([1 - last]), sealed, aad)
        self.assertEqual(total, writer.container_size)

    def test_same_inputs_give_the_same_container(self):
        images = np.arange(3 * 4 * 4 * 3, dtype=np.uint8).reshape(3, 4, 4, 3)
        schema, records, fingerprint = arrays.prepare_dataset(images, [0, 1, 0])
        # Channels-last arrays are stored channels first, [C, H, W].
        self.assertEqual(schema.dims, [3, 4, 4])
        self.assertEqual(records(0, 1)[1:], images[0].transpose(2, 0, 1).tobytes())
        _, _, again = arrays.prepare_dataset(images.copy(), [0, 1, 0])
        self.assertEqual(fingerprint, again)
        _, _, changed = arrays.prepare_dataset(images, [0, 1, 1])
        self.assertNotEqual(fingerprint, changed)
        key, dataset_id, prefix = os.urandom(32), os.urandom(16), os.urandom(7)
        one = ContainerWriter(schema, key, dataset_id, prefix)
        two = ContainerWriter(schema, key, dataset_id, prefix)
        self.assertEqual(one.header, two.header)
        self.assertEqual(one.seal_chunk(0, records(0, 3)), two.seal_chunk(0, records(0, 3)))

    def test_inputs_the_format_refuses(self):
        with self.assertRaisesRegex(ChironError, "not below the class count"):
            arrays.prepare_dataset(np.zeros((2, 3), np.uint8), [0, 5], ["a", "b"])
        with self.assertRaisesRegex(ChironError, "one label per sample"):
            arrays.prepare_dataset(np.zeros((2, 3), np.uint8), [0])
        with self.assertRaisesRegex(ChironError, "finite"):
            arrays.prepare_dataset(np.array([[np.nan]], np.float32), [0])
        with self.assertRaisesRegex(ChironError, "uint8 .* or floating point"):
            arrays.prepare_dataset(np.zeros((2, 3), np.int64), [0, 0])
        with self.assertRaisesRegex(ChironError, "unique"):
            Schema(ELEMENT_U8, [3], ["a", "a"], 1)
        with self.assertRaisesRegex(ChironError, "control"):
            Schema(ELEMENT_U8, [3], ["a\n"], 1)


def self_signed_der(extensions):
    """A self-signed P-256 certificate (DER) with extra (oid, value) extensions."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "test")])
    now = datetime.datetime.utcnow()
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(1)
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
    for oid, value in extensions:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def cmw(evidence, media_type=ratls.EVIDENCE_MEDIA_TYPE, indicator=4):
    """A CMW record as evidence_extension.h specifies it, built from the spec."""
    def head(major, length):
        if length < 24:
            return bytes([major << 5 | length])
        if length < 256:
            return bytes([major << 5 | 24, length])
        return bytes([major << 5 | 25]) + struct.pack(">H", length)

    return (b"\x83" + head(3, len(media_type)) + media_type + head(2, len(evidence)) + evidence +
            bytes([indicator]))


class EvidenceExtensionTest(unittest.TestCase):
    def test_well_formed_records_decode(self):
        for evidence in (b"CHEV" + b"x" * 10, b"CHEV" + os.urandom(300), b"CHEV" + b"y" * 2000):
            self.assertEqual(ratls.decode_evidence_extension(cmw(evidence)), evidence)

    def test_malformed_records_are_refused_without_echoing_them(self):
        good = cmw(b"CHEV" + b"\xab" * 40)
        cases = {
            "not a Chiron evidence record": b"\x82" + good[1:],
            "type is not Chiron evidence": cmw(b"CHEV", media_type=b"application/vnd.other.evid"),
            "indicator is not Evidence": cmw(b"CHEV", indicator=2),
            "trailing bytes": good + b"\x00",
            "truncated": good[:40],
            # A 1-byte length of 10 (shortest form is the 5-bit one).
            "shortest form": b"\x83\x78\x1f" + ratls.EVIDENCE_MEDIA_TYPE + b"\x58\x0a" +
                             b"A" * 10 + b"\x04",
        }
        for reason, value in cases.items():
            with self.assertRaises(AttestationError) as refused:
                ratls.decode_evidence_extension(value)
            self.assertIn(reason, str(refused.exception))
            self.assertNotIn("ab" * 4, str(refused.exception))

    def test_certificate_of_an_older_release_is_refused_as_such(self):
        # cryptography cannot even build the retired OID (a 128-bit arc), so the certificate is
        # made with a placeholder OID of the same encoded size, then patched.
        retired = ratls._der_oid(ratls.RETIRED_EVIDENCE_EXTENSION_OID)
        placeholder = "1.2" + ".1" * (len(retired) - 3)
        self.assertEqual(len(ratls._der_oid(placeholder)), len(retired))
        der = self_signed_der([(placeholder, b"CHEV")])
        der = der.replace(ratls._der_oid(placeholder), retired)
        with self.assertRaisesRegex(AttestationError, "older Chiron release"):
            ratls.parse_certificate(der)
        with self.assertRaisesRegex(AttestationError, "no Chiron evidence extension"):
            ratls.parse_certificate(self_signed_der([]))
        evidence = b"CHEV" + b"e" * 20
        spki, found = ratls.parse_certificate(
            self_signed_der([(ratls.EVIDENCE_EXTENSION_OID, cmw(evidence))]))
        self.assertEqual(found, evidence)
        self.assertEqual(spki[:2], b"\x30\x59")  # a P-256 SubjectPublicKeyInfo
        with self.assertRaisesRegex(AttestationError, "not well-formed X.509"):
            ratls.parse_certificate(b"\x30\x03\x02\x01\x00")

    def test_report_data_formulas(self):
        spki = b"\x30\x59" + b"k" * 89
        self.assertEqual(ratls.certificate_report_data(spki),
                         hashlib.sha512(b"chiron-ratls-cert-v1\x00" + spki).digest())
        nonce, client = b"n" * 32, b"c" * 91
        expected = hashlib.sha512(b"chiron-ratls-fresh-v1\x00" + struct.pack("<I", 32) + nonce +
                                  struct.pack("<I", 91) + spki + struct.pack("<I", 91) +
                                  client).digest()
        self.assertEqual(ratls.fresh_report_data(nonce, spki, client), expected)


class IdentityTest(unittest.TestCase):
    def test_a_cli_profile_key_is_the_same_principal(self):
        chiron = os.path.join(os.environ.get("CHIRON_BUILD_DIR", "build"), "bin", "chiron")
        with tempfile.TemporaryDirectory() as directory:
            profile = os.path.join(directory, "profile")
            # No server is needed to create a profile (the registration step then fails).
            subprocess.run([chiron, "--profile", profile, "init", "--name", "t", "--server",
                            "127.0.0.1:1"], capture_output=True)
            with open(os.path.join(profile, "profile.json")) as f:
                principal = json.load(f)["principal_id"]
            self.assertEqual(Identity.load_or_create(profile).principal_id, principal)
            fresh = os.path.join(directory, "fresh")
            created = Identity.load_or_create(fresh)
            self.assertEqual(os.stat(os.path.join(fresh, "principal.key")).st_mode & 0o777,
                             0o600)
            self.assertEqual(Identity.load_or_create(fresh).principal_id, created.principal_id)
            os.chmod(os.path.join(fresh, "principal.key"), 0o644)
            with self.assertRaisesRegex(ChironError, "readable by other users"):
                Identity.load_or_create(fresh)


def make_chain(principal, count):
    records = []
    previous = bytes(32)
    for sequence in range(1, count + 1):
        record = pb.audit_pb2.AuditRecord(sequence=sequence, time_unix=1700000000 + sequence,
                                          principal_id=principal, event="model.predict",
                                          subject="model-%d" % sequence, previous_hash=previous)
        record.hash = audit.record_hash(record)
        previous = record.hash
        records.append(record)
    return records


class AuditChainTest(unittest.TestCase):
    principal = "ab" * 32

    def test_an_intact_chain_verifies_and_extends_its_head(self):
        records = make_chain(self.principal, 5)
        head = audit.verify_chain(records[:3], self.principal)
        self.assertEqual(head.sequence, 3)
        self.assertEqual(audit.verify_chain(records, self.principal, head).sequence, 5)
        self.assertIsNone(audit.verify_chain([], self.principal))

    def test_hash_input_matches_the_published_encoding(self):
        record = make_chain(self.principal, 1)[0]
        def text(s):
            return struct.pack("<I", len(s)) + s.encode()
        data = (b"CHIRON-AUDIT-V1\x00" + struct.pack("<Qq", 1, 1700000001) +
                text(self.principal) + text("model.predict") + text("model-1") +
                struct.pack("<I", 32) + bytes(32))
        self.assertEqual(record.hash, hashlib.sha256(data).digest())

    def test_every_kind_of_damage_is_named(self):
        def refused(records, pattern, previous=None):
            with self.assertRaisesRegex(AuditChainError, pattern):
                audit.verify_chain(records, self.principal, previous)

        records = make_chain(self.principal, 5)
        altered = make_chain(self.principal, 5)
        altered[2].subject = "model-x"
        refused(altered, "record 3: hash does not match its contents")
        refused(records[:2] + records[3:], "records 3..3 are missing")
        refused([records[0], records[1], records[2], records[1]], "record 2 follows record 3")
        refused(records[1:], "fetch from sequence 1")
        foreign = make_chain("cd" * 32, 5)
        refused(records[:2] + foreign[2:], "another principal")
        head = audit.verify_chain(records, self.principal)
        refused(records[:3], "truncated or rolled back", head)
        rewritten = make_chain(self.principal, 5)
        rewritten[4].subject = "other"
        rewritten[4].hash = audit.record_hash(rewritten[4])
        refused(rewritten, "history was rewritten", head)


if __name__ == "__main__":
    unittest.main(verbosity=2)
