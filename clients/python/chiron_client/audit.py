"""Verifying a principal's audit chain (docs/formats/audit.md), as `chiron audit --verify` does
(src/shared/audit/chain.cc, VerifyAuditChain).

Each record's hash is SHA-256 over

    "CHIRON-AUDIT-V1" 0x00 || u64 sequence || i64 time_unix || str principal_id || str event
    || str subject || u32 32 || previous_hash          (integers little-endian; str = u32 len ||
                                                        bytes)

and each record carries the previous record's hash, so an altered, removed, inserted or
reordered record breaks the chain. A truncated or rolled-back log is still a valid shorter chain:
only the head remembered from the last verification reveals it, so verify_chain takes that head
and returns the new one to remember (AuditHeadFile keeps it in a JSON file).

Thread safety: pure functions; an AuditHeadFile is one file, replaced atomically.
"""

import collections
import hashlib
import hmac
import json
import os
import re
import struct

from .errors import AuditChainError, ChironError

HASH_SIZE = 32
MAX_PRINCIPAL_ID_SIZE = 128
MAX_EVENT_SIZE = 64
MAX_SUBJECT_SIZE = 512
_EVENT = re.compile(rb"^[a-z0-9._-]+$")

AuditHead = collections.namedtuple("AuditHead", ["sequence", "hash"])


def record_hash(record):
    """SHA-256 over a record's canonical encoding (fields of a chiron.v1.AuditRecord)."""
    def text(value):
        raw = value.encode("utf-8")
        return struct.pack("<I", len(raw)) + raw

    data = (b"CHIRON-AUDIT-V1\x00" + struct.pack("<Qq", record.sequence, record.time_unix) +
            text(record.principal_id) + text(record.event) + text(record.subject) +
            struct.pack("<I", len(record.previous_hash)) + bytes(record.previous_hash))
    return hashlib.sha256(data).digest()


def _check_fields(record):
    principal = record.principal_id.encode("utf-8")
    event = record.event.encode("utf-8")
    subject = record.subject.encode("utf-8")
    if not 1 <= len(principal) <= MAX_PRINCIPAL_ID_SIZE or \
            any(b < 0x21 or b > 0x7E for b in principal):
        return "the principal id is not 1..128 printable bytes"
    if not 1 <= len(event) <= MAX_EVENT_SIZE or not _EVENT.match(event):
        return "the event is not 1..64 bytes of [a-z0-9._-]"
    if len(subject) > MAX_SUBJECT_SIZE or any(b < 0x20 or b == 0x7F for b in subject):
        return "the subject is longer than 512 bytes or holds a control character"
    return None


def verify_chain(records, expected_principal, previously_seen=None):
    """The new head (AuditHead, or previously_seen if there are no records) of `records`, a list
    of chiron.v1.AuditRecord fetched from sequence 1.

    Raises AuditChainError naming the first broken record."""
    seen = previously_seen.sequence if previously_seen else 0
    if not records:
        if seen:
            raise AuditChainError("audit chain is empty but record %d was seen before (the log "
                                  "was truncated or rolled back)" % seen)
        return previously_seen
    first = records[0]
    if first.sequence == 1:
        expected_previous = bytes(HASH_SIZE)
    elif seen and first.sequence == seen + 1:
        expected_previous = bytes(previously_seen.hash)
    else:
        raise AuditChainError("audit chain starts at record %d and no previously seen record "
                              "anchors it: fetch from sequence 1" % first.sequence)
    matched_seen = seen == 0 or first.sequence == seen + 1
    previous = None
    for record in records:
        name = "audit record %d" % record.sequence
        if previous is not None:
            if record.sequence <= previous.sequence:
                raise AuditChainError("%s follows record %d (records are out of order: the log "
                                      "was reordered or replayed)" % (name, previous.sequence))
            if record.sequence != previous.sequence + 1:
                raise AuditChainError(
                    "audit chain: expected record %d after record %d but got record %d (records "
                    "%d..%d are missing)" % (previous.sequence + 1, previous.sequence,
                                             record.sequence, previous.sequence + 1,
                                             record.sequence - 1))
            expected_previous = bytes(previous.hash)
        if record.principal_id != expected_principal:
            raise AuditChainError("%s belongs to another principal, not %s (a record from "
                                  "another chain was inserted)" % (name, expected_principal))
        problem = _check_fields(record)
        if problem:
            raise AuditChainError("%s: %s" % (name, problem))
        if len(record.previous_hash) != HASH_SIZE or len(record.hash) != HASH_SIZE:
            raise AuditChainError("%s: hashes must be %d bytes" % (name, HASH_SIZE))
        if not hmac.compare_digest(bytes(record.previous_hash), expected_previous):
            raise AuditChainError("%s: previous_hash does not match the record before it (a "
                                  "record was removed, inserted or reordered)" % name)
        if not hmac.compare_digest(record_hash(record), bytes(record.hash)):
            raise AuditChainError("%s: hash does not match its contents (the record was "
                                  "altered)" % name)
        if seen and record.sequence == seen:
            if not hmac.compare_digest(bytes(record.hash), bytes(previously_seen.hash)):
                raise AuditChainError("%s: hash differs from the one seen before (the history "
                                      "was rewritten)" % name)
            matched_seen = True
        previous = record
    if not matched_seen:
        raise AuditChainError("audit chain ends at record %d but record %d was seen before (the "
                              "log was truncated or rolled back)" % (previous.sequence, seen))
    return AuditHead(previous.sequence, bytes(previous.hash))


class AuditHeadFile:
    """The last verified head per (server, principal), in a JSON file (mode 0600)."""

    def __init__(self, path):
        self.path = path

    def _load_all(self):
        if not os.path.exists(self.path):
            return {}
        try:
            with open(self.path) as f:
                data = json.load(f)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return data
        except ValueError as error:
            raise ChironError("audit head file %s is corrupt (%s): it is what detects a "
                              "rolled-back log, so restore it rather than delete it" %
                              (self.path, error))

    def load(self, server, principal_id):
        entry = self._load_all().get("%s %s" % (server, principal_id))
        if not entry:
            return None
        return AuditHead(int(entry["sequence"]), bytes.fromhex(entry["hash"]))

    def save(self, server, principal_id, head):
        data = self._load_all()
        data["%s %s" % (server, principal_id)] = {"sequence": head.sequence,
                                                  "hash": head.hash.hex()}
        temporary = self.path + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)
