"""Resumable, client-side-encrypted upload of a dataset (the Python side of
src/client/upload.cc).

Before BeginUpload a resume state file is written to the client's state_dir (0600): dataset
id, data key, nonce prefix, header and a SHA-256 of the input. If the upload is interrupted,
uploading again with the same name and input re-creates the byte-identical container (same key,
id and nonce prefix, so no nonce ever seals other plaintext) and sends only the chunks from the
server's next_chunk_index on; a changed input is refused. The file is removed once the upload
completes, or when the server refused the dataset before storing anything.

The chunks go through the attested Datasets.Upload stream, at most IN_FLIGHT_CHUNKS ahead of the
server's acknowledgements (each ack means "durable"), so an interruption leaves a bounded
number of chunks to send again.

Thread safety: one upload per dataset name at a time (they share the state file).
"""

import collections
import json
import os
import threading

import grpc

from . import _stubs as pb
from .container import ContainerWriter, DATASET_ID_SIZE, KEY_SIZE, NONCE_PREFIX_SIZE
from .errors import ChironError, from_rpc_error

STATE_FORMAT = "chiron-python-upload-state-v1"
IN_FLIGHT_CHUNKS = 8

UploadResult = collections.namedtuple(
    "UploadResult", ["dataset_id", "chunks", "samples", "container_size", "resumed_from",
                     "already_complete"])

_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
              grpc.StatusCode.CANCELLED}


def upload_dataset(client, name, schema, records, fingerprint, on_progress, target_chunk_size):
    """See Client.upload_array: `records(start, count)` gives the plaintext records, the
    fingerprint identifies the input for a resume. Returns UploadResult."""
    state_path = os.path.join(client.state_dir, name.encode("utf-8").hex() + ".json")
    state = None
    if os.path.exists(state_path):
        with open(state_path) as f:
            state = json.load(f)
        if state.get("format") != STATE_FORMAT or state.get("name") != name:
            raise ChironError("upload resume state %s is not this upload's: remove it" %
                              state_path)
        if state.get("fingerprint") != fingerprint:
            raise ChironError(
                "the input of the interrupted upload '%s' changed since it began, so it "
                "cannot be resumed: delete_dataset(%r) and upload again" % (name, name),
                grpc.StatusCode.FAILED_PRECONDITION)
        key = bytes.fromhex(state["data_key"])
        dataset_id = bytes.fromhex(state["dataset_id"])
        nonce_prefix = bytes.fromhex(state["nonce_prefix"])
        target_chunk_size = int(state["target_chunk_size"])
    else:
        key = os.urandom(KEY_SIZE)
        dataset_id = os.urandom(DATASET_ID_SIZE)
        nonce_prefix = os.urandom(NONCE_PREFIX_SIZE)
    writer = ContainerWriter(schema, key, dataset_id, nonce_prefix, target_chunk_size)
    if state is not None:
        if writer.header.hex() != state.get("header"):
            raise ChironError("resume state %s does not re-create the same container: "
                              "remove it, delete_dataset(%r) and upload again" %
                              (state_path, name))
    else:
        # Saved before the server hears of the dataset, so any interruption resumes.
        os.makedirs(client.state_dir, mode=0o700, exist_ok=True)
        _write_private_json(state_path, {
            "format": STATE_FORMAT, "name": name, "dataset_id": dataset_id.hex(),
            "data_key": key.hex(), "nonce_prefix": nonce_prefix.hex(),
            "header": writer.header.hex(), "fingerprint": fingerprint,
            "target_chunk_size": target_chunk_size})
    n = writer.chunk_count
    try:
        begin = client.datasets_stub.BeginUpload(pb.datasets_pb2.BeginUploadRequest(
            name=name, container_header=writer.header, data_key=key), timeout=client.timeout)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.ALREADY_EXISTS and state is not None and \
                _completed_earlier(client, name, dataset_id.hex()):
            os.remove(state_path)
            return UploadResult(dataset_id.hex(), n, schema.sample_count,
                                writer.container_size, n, True)
        if error.code() not in _TRANSIENT and state is None:
            os.remove(state_path)  # refused before anything was stored
        raise from_rpc_error(error, "BeginUpload")
    if begin.dataset_id != dataset_id.hex():
        raise ChironError("the server answered another dataset id than the container's: "
                          "it is not behaving as a Chiron runtime must")
    start = begin.next_chunk_index
    if start >= n:
        raise ChironError("the server asked to resume past the last chunk: it is not "
                          "behaving as a Chiron runtime must")
    spc = writer.samples_per_chunk
    # At most IN_FLIGHT_CHUNKS sealed chunks ahead of the server's acks, so an interruption
    # (an exception in on_progress, Ctrl-C) leaves a bounded amount unacknowledged.
    window = threading.Condition()
    progress = {"acknowledged": start, "stop": False}

    def chunks():
        for index in range(start, n):
            with window:
                window.wait_for(lambda: progress["stop"] or
                                index - progress["acknowledged"] < IN_FLIGHT_CHUNKS)
                if progress["stop"]:
                    return
            sealed = writer.seal_chunk(index, records(index * spc,
                                                      writer.samples_in_chunk(index)))
            yield pb.datasets_pb2.UploadChunk(dataset_id=begin.dataset_id, index=index,
                                              last=index == n - 1, sealed=sealed)

    call = client.datasets_stub.Upload(chunks())
    finished = False
    try:
        for ack in call:
            through = ack.acknowledged_through
            if progress["acknowledged"] < through <= n:  # only forward, over chunks sent
                with window:
                    progress["acknowledged"] = through
                    window.notify_all()
                if on_progress:
                    on_progress(through, n)
        finished = True
    except grpc.RpcError as error:
        acknowledged = progress["acknowledged"]
        partial = "; dataset '%s' is partial on the server (%d of %d chunks stored): " % (
            name, acknowledged, n)
        if error.code() in _TRANSIENT:
            raise ChironError("upload of '%s' was interrupted after %d of %d chunks were "
                              "stored (%s)%scall upload again to resume from chunk %d, or "
                              "delete_dataset(%r)" % (name, acknowledged, n,
                                                      error.details(), partial,
                                                      acknowledged, name), error.code())
        raise ChironError("Upload: %s%sdelete_dataset(%r) and upload again" %
                          (error.details(), partial, name), error.code())
    finally:
        with window:
            progress["stop"] = True
            window.notify_all()
        if not finished:
            call.cancel()
    acknowledged = progress["acknowledged"]
    if acknowledged != n:
        raise ChironError("upload of '%s' ended after %d of %d chunks were stored: call "
                          "upload again to resume" % (name, acknowledged, n),
                          grpc.StatusCode.UNAVAILABLE)
    os.remove(state_path)
    return UploadResult(begin.dataset_id, n, schema.sample_count, writer.container_size,
                        start, False)

def _completed_earlier(client, name, dataset_id):
    for info in client.datasets():
        if info.name == name and info.complete and info.dataset_id == dataset_id:
            return True
    return False


def _write_private_json(path, data):
    temporary = path + ".tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
