"""The encrypted dataset container, version 1 (docs/formats/dataset.md), written in Python.

    container = header || chunk[0] || ... || chunk[n - 1]
    header    = body || nonce_prefix (7) || HMAC-SHA256(mac_key, body || nonce_prefix)
    chunk[i]  = AES-256-GCM over samples_per_chunk records (label || sample), AEAD stream
                (docs/formats/aead-stream.md) with stream_aad = body

Keys come from the 32-byte data key with HKDF-SHA256 (salt = dataset id). The server checks
every byte of this (header tag, key check, each chunk's tag at its index, the last flag), so a
container this module got wrong is refused at upload: the integration test
(tests/python/client_session_test.py) is what proves the two implementations agree.

Thread safety: a ContainerWriter is immutable after construction; seal_chunk may be called from
any thread.
"""

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ChironError

MAGIC = b"CHIRONDS"
VERSION = 1
DATASET_ID_SIZE = 16
KEY_SIZE = 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
DEFAULT_CHUNK_TARGET_SIZE = 1 << 20
ELEMENT_U8, ELEMENT_F32 = 1, 2
LABEL_U8, LABEL_U16 = 1, 2
STREAM_LABEL = b"chiron aead-stream v1"
MAX_SAMPLE_SIZE = 16 << 20
MAX_CHUNK_PLAINTEXT = 64 << 20

FASHION_MNIST_CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                             "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _hkdf(key, dataset_id, info, size):
    return HKDF(algorithm=hashes.SHA256(), length=size, salt=bytes(dataset_id),
                info=info).derive(bytes(key))


class Schema:
    """What each record holds: element type and shape of a sample, label type, class names, and
    the sample count. Raises ChironError for anything the format's limits refuse."""

    def __init__(self, element_type, dims, class_names, sample_count):
        if element_type not in (ELEMENT_U8, ELEMENT_F32):
            raise ChironError("element type must be uint8 or float32")
        dims = [int(d) for d in dims]
        if not 1 <= len(dims) <= 4 or any(d < 1 for d in dims):
            raise ChironError("a sample must have 1 to 4 dimensions, each at least 1 (got %s)" %
                              (dims,))
        self.element_type = element_type
        self.dims = dims
        element_size = 1 if element_type == ELEMENT_U8 else 4
        self.sample_size = element_size
        for d in dims:
            self.sample_size *= d
        if self.sample_size > MAX_SAMPLE_SIZE:
            raise ChironError("one sample is %d bytes, above the 16 MiB limit" % self.sample_size)
        class_names = [str(n) for n in class_names]
        if not 1 <= len(class_names) <= 65536:
            raise ChironError("a dataset needs 1 to 65536 classes")
        if len(set(class_names)) != len(class_names):
            raise ChironError("class names must be unique")
        for name in class_names:
            raw = name.encode("utf-8")
            if not 1 <= len(raw) <= 255 or any(b < 0x20 or b == 0x7F for b in raw):
                raise ChironError("class name %r must be 1 to 255 bytes without control "
                                  "characters" % name)
        self.class_names = class_names
        self.label_type = LABEL_U8 if len(class_names) <= 256 else LABEL_U16
        self.label_size = 1 if self.label_type == LABEL_U8 else 2
        if not 1 <= sample_count <= 1 << 32:
            raise ChironError("a dataset holds 1 to 2^32 samples (got %d)" % sample_count)
        self.sample_count = int(sample_count)
        self.record_size = self.label_size + self.sample_size

    def encode(self):
        out = struct.pack("<BB", self.element_type, len(self.dims))
        out += b"".join(struct.pack("<I", d) for d in self.dims)
        out += struct.pack("<BI", self.label_type, len(self.class_names))
        for name in self.class_names:
            raw = name.encode("utf-8")
            out += struct.pack("<B", len(raw)) + raw
        return out + struct.pack("<Q", self.sample_count)


class ContainerWriter:
    """Seals records into a container under `key` (32 bytes), with a given dataset id and nonce
    prefix: the same inputs always give byte-identical output, which is what lets an interrupted
    upload resume without ever reusing a nonce for other plaintext."""

    def __init__(self, schema, key, dataset_id, nonce_prefix,
                 target_chunk_size=DEFAULT_CHUNK_TARGET_SIZE):
        if len(key) != KEY_SIZE or len(dataset_id) != DATASET_ID_SIZE or \
                len(nonce_prefix) != NONCE_PREFIX_SIZE:
            raise ChironError("container: key, dataset id or nonce prefix has the wrong size")
        self.schema = schema
        self.dataset_id = bytes(dataset_id)
        self.samples_per_chunk = min(max(1, target_chunk_size // schema.record_size),
                                     schema.sample_count)
        if self.samples_per_chunk > 1 and \
                self.samples_per_chunk * schema.record_size > MAX_CHUNK_PLAINTEXT:
            raise ChironError("chunks may hold at most 64 MiB of records")
        self.chunk_count = -(-schema.sample_count // self.samples_per_chunk)
        key_check = _hkdf(key, dataset_id, b"chiron dataset v1 key check", 16)
        mac_key = _hkdf(key, dataset_id, b"chiron dataset v1 header mac key", 32)
        self._aead = AESGCM(_hkdf(key, dataset_id, b"chiron dataset v1 chunk key", 32))
        schema_bytes = schema.encode()
        header_size = 50 + len(schema_bytes) + NONCE_PREFIX_SIZE + 32
        self.body = (MAGIC + struct.pack("<HI", VERSION, header_size) + self.dataset_id +
                     key_check + struct.pack("<I", self.samples_per_chunk) + schema_bytes)
        self.nonce_prefix = bytes(nonce_prefix)
        signed = self.body + self.nonce_prefix
        self.header = signed + hmac.new(mac_key, signed, hashlib.sha256).digest()

    def samples_in_chunk(self, index):
        if index + 1 < self.chunk_count:
            return self.samples_per_chunk
        return self.schema.sample_count - index * self.samples_per_chunk

    @property
    def container_size(self):
        return (len(self.header) + self.schema.sample_count * self.schema.record_size +
                self.chunk_count * TAG_SIZE)

    def seal_chunk(self, index, records):
        """Chunk `index` sealed: `records` is exactly samples_in_chunk(index) records of
        label || sample, concatenated."""
        if not 0 <= index < self.chunk_count:
            raise ChironError("chunk %d is outside the container's %d chunks" %
                              (index, self.chunk_count))
        if len(records) != self.samples_in_chunk(index) * self.schema.record_size:
            raise ChironError("chunk %d must hold exactly %d records" %
                              (index, self.samples_in_chunk(index)))
        last = 1 if index == self.chunk_count - 1 else 0
        nonce = self.nonce_prefix + struct.pack(">IB", index, last)
        aad = (STREAM_LABEL + struct.pack(">Q", len(self.body)) + self.body +
               struct.pack(">IB", index, last))
        return self._aead.encrypt(nonce, bytes(records), aad)
