"""numpy arrays and IDX files as Chiron datasets and prediction inputs.

Layouts follow the C++ importers (docs/formats/dataset.md, "Schema"): grey images N×H×W keep
their shape (as IDX does: 28x28); colour images given channels-last (N×H×W×C, the usual numpy
layout) are stored planar [C, H, W] as the PNG and CIFAR importers store them, and predict()
applies the same transposition, so a model trained from numpy is queried with numpy in the same
layout. uint8 samples stay uint8; any float array becomes little-endian float32.

Thread safety: pure functions over their arguments.
"""

import gzip
import hashlib
import os
import struct

import numpy as np

from .container import (ELEMENT_F32, ELEMENT_U8, FASHION_MNIST_CLASS_NAMES, Schema)
from .errors import ChironError


def _as_samples(samples, channels_last):
    """samples as a C-contiguous uint8 or <f4 array in the stored layout, and its element type."""
    samples = np.asarray(samples)
    if samples.dtype == np.uint8:
        element_type = ELEMENT_U8
    elif np.issubdtype(samples.dtype, np.floating):
        samples = samples.astype("<f4")
        if not np.all(np.isfinite(samples)):
            raise ChironError("samples must be finite numbers (found NaN or infinity)")
        element_type = ELEMENT_F32
    else:
        raise ChironError("samples must be uint8 (images) or floating point (features), not %s"
                          % samples.dtype)
    if samples.ndim < 2 or samples.ndim > 5:
        raise ChironError("samples must be an array of N samples of 1 to 4 dimensions each "
                          "(got shape %s)" % (samples.shape,))
    if samples.ndim == 4 and channels_last:
        samples = samples.transpose(0, 3, 1, 2)  # N×H×W×C → N×C×H×W
    return np.ascontiguousarray(samples), element_type


def prepare_dataset(samples, labels, class_names=None, channels_last=True):
    """(Schema, records(start, count) -> bytes, fingerprint) for an upload.

    labels: N integers in 0 .. len(class_names) - 1; class_names default to "0" .. max label.
    The fingerprint (SHA-256 over schema and contents) is what a resumed upload must match."""
    samples, element_type = _as_samples(samples, channels_last)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != samples.shape[0]:
        raise ChironError("labels must be a vector of one label per sample (%d samples, labels "
                          "of shape %s)" % (samples.shape[0], labels.shape))
    if not np.issubdtype(labels.dtype, np.integer):
        raise ChironError("labels must be integers (class indices), not %s" % labels.dtype)
    if labels.size and labels.min() < 0:
        raise ChironError("labels must not be negative")
    if class_names is None:
        class_names = [str(i) for i in range(int(labels.max()) + 1 if labels.size else 1)]
    if labels.size and labels.max() >= len(class_names):
        raise ChironError("label %d is not below the class count %d" %
                          (int(labels.max()), len(class_names)))
    schema = Schema(element_type, samples.shape[1:], class_names, samples.shape[0])
    label_bytes = labels.astype("<u1" if schema.label_size == 1 else "<u2").view(np.uint8)
    label_bytes = label_bytes.reshape(samples.shape[0], schema.label_size)
    sample_bytes = samples.reshape(samples.shape[0], -1).view(np.uint8)

    def records(start, count):
        return np.concatenate([label_bytes[start:start + count],
                               sample_bytes[start:start + count]], axis=1).tobytes()

    digest = hashlib.sha256(schema.encode())
    digest.update(label_bytes.tobytes())
    digest.update(sample_bytes.tobytes())
    return schema, records, digest.hexdigest()


def _read_maybe_gzip(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise ChironError("%s: corrupt gzip (%s)" % (path, error))
    return data


def _read_idx(path, dims_allowed):
    data = _read_maybe_gzip(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ChironError("%s is not an IDX file of unsigned bytes (magic 0x0000 08 ..)" % path)
    rank = data[3]
    if rank not in dims_allowed:
        raise ChironError("%s: an IDX file of %d dimensions was expected, not %d" %
                          (path, max(dims_allowed), rank))
    dims = struct.unpack(">%dI" % rank, data[4:4 + 4 * rank])
    size = 1
    for d in dims:
        size *= d
    body = data[4 + 4 * rank:]
    if len(body) != size:
        raise ChironError("%s: the header announces %d bytes of data but the file has %d" %
                          (path, size, len(body)))
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def default_labels_path(images_path):
    for old, new in (("-images-idx3-ubyte", "-labels-idx1-ubyte"),
                     ("-images.idx3-ubyte", "-labels.idx1-ubyte")):
        base = os.path.basename(images_path)
        if old in base:
            return os.path.join(os.path.dirname(images_path), base.replace(old, new, 1))
    raise ChironError("cannot guess the labels file of %s: pass labels_path" % images_path)


def read_idx(images_path, labels_path=None, count=None):
    """(images N×H×W uint8, labels N uint8, class_names) from an IDX pair, gzip or plain, as the
    C++ importer reads it (class names: Fashion-MNIST's if the path says "fashion", else "0" ..
    max label). `count`: only the first COUNT samples."""
    images = _read_idx(images_path, (2, 3, 4, 5))
    labels_path = labels_path or default_labels_path(images_path)
    labels = _read_idx(labels_path, (1,))
    if images.shape[0] != labels.shape[0]:
        raise ChironError("%s has %d images but %s has %d labels" %
                          (images_path, images.shape[0], labels_path, labels.shape[0]))
    if count is not None:
        images, labels = images[:count], labels[:count]
    if "fashion" in images_path.lower() and labels.size and labels.max() < 10:
        class_names = list(FASHION_MNIST_CLASS_NAMES)
    else:
        class_names = [str(i) for i in range(int(labels.max()) + 1 if labels.size else 1)]
    return images, labels, class_names


def prediction_samples(model_info, samples, channels_last=True):
    """list of raw sample bytes for Predict, checked against the model's input shape and type
    (ModelInfo or SharedModel). Raises ChironError naming the mismatch."""
    samples, element_type = _as_samples(samples, channels_last)
    wanted_type = "u8" if element_type == ELEMENT_U8 else "f32"
    if model_info.input_type and model_info.input_type != wanted_type:
        raise ChironError("model '%s' takes %s samples, not %s" %
                          (model_info.name, model_info.input_type, wanted_type))
    shape = tuple(model_info.input_shape)
    if shape and tuple(samples.shape[1:]) != shape:
        raise ChironError("model '%s' takes samples of shape %s, not %s" %
                          (model_info.name, "x".join(map(str, shape)),
                           "x".join(map(str, samples.shape[1:]))))
    flat = samples.reshape(samples.shape[0], -1).view(np.uint8)
    return [row.tobytes() for row in flat]
