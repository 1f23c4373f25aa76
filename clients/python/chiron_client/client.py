"""Client: an owner's attested session with chirond, from Python.

    client = Client.connect("127.0.0.1:7443", policy="policy.json")
    client.upload_array("digits", images, labels)          # encrypted here, resumable
    job = client.train("digits", recipe="mlp", model="m", epochs=1, on_progress=print_progress)
    client.evaluate("m", "digits-test"); client.predict("m", images[:8]); client.audit()

connect() verifies chirond's certificate evidence under the policy before anything is sent, pins
the channel to exactly that certificate (ratls.py), registers the caller as an owner and checks
fresh evidence over a random nonce and both TLS keys. A restarted chirond has a new key: connect
again (the pinned channel refuses it).

Errors: every method raises ChironError (or a subclass: AttestationError, AuditChainError,
JobFailedError, RateLimitedError) whose message says what to do; `code` keeps the gRPC status
code when the server refused.

Thread safety: a Client may be shared by threads (gRPC channels are thread safe), except that
two uploads of the same dataset name must not run at once (they share a resume state file).
"""

import collections
import os
import time
import warnings

import grpc

from . import _stubs as pb
from . import arrays, audit, ratls, upload
from .container import DEFAULT_CHUNK_TARGET_SIZE
from .errors import ChironError, JobFailedError, RateLimitedError, from_rpc_error
from .upload import UploadResult  # noqa: F401 (part of the package's API)
from .identity import Identity

MAX_MESSAGE_SIZE = 96 << 20
MAX_RETRY_AFTER_SECONDS = 120.0

Prediction = collections.namedtuple("Prediction", ["classes", "probabilities", "names"])

_TERMINAL = {pb.jobs_pb2.JOB_STATE_SUCCEEDED, pb.jobs_pb2.JOB_STATE_FAILED,
             pb.jobs_pb2.JOB_STATE_CANCELLED}


def job_state_name(state):
    return pb.jobs_pb2.JobState.Name(state)[len("JOB_STATE_"):].lower()


def print_progress(view):
    """An on_progress callback for train() and watch(): one line per update."""
    line = "job %s %s: epoch %d/%d, batch %d/%d" % (
        view.job_id[:12], job_state_name(view.state), view.epochs_done, view.epochs_total,
        view.batches_done, view.batches_total)
    if view.history:
        last = view.history[-1]
        line += ", validation accuracy %.3f (epoch %d)" % (last.validation_accuracy, last.epoch)
    print(line, flush=True)


class Client:
    """An attested, pinned, mutual-TLS session of one owner with one chirond."""

    def __init__(self, server, identity, channel, certificate_claims, server_spki, verifier,
                 timeout, state_dir):
        self.server = server
        self.identity = identity
        self.channel = channel
        self.certificate_claims = certificate_claims
        self.server_spki = server_spki
        self.verifier = verifier
        self.timeout = timeout
        self.state_dir = state_dir
        self.attestation = pb.attestation_pb2_grpc.AttestationStub(channel)
        self.principals = pb.principals_pb2_grpc.PrincipalsStub(channel)
        self.datasets_stub = pb.datasets_pb2_grpc.DatasetsStub(channel)
        self.jobs = pb.jobs_pb2_grpc.JobsStub(channel)
        self.models_stub = pb.models_pb2_grpc.ModelsStub(channel)
        self.recipes_stub = pb.recipes_pb2_grpc.RecipesStub(channel)
        self.audit_stub = pb.audit_pb2_grpc.AuditStub(channel)
        self.fresh_claims = None
        self.insecure = bool(certificate_claims.get("simulated"))

    # --- Connecting ------------------------------------------------------------------------

    @classmethod
    def connect(cls, server, policy=None, identity=None, verifier=None, chiron=None,
                display_name="python-owner", register=True, timeout=30.0, state_dir=None):
        """An attested session with chirond at `server` ("host:port").

        policy: the attestation policy file (docs/formats/policy.md), verified with the `chiron`
        CLI (`chiron`: its path; default $CHIRON_CLI or PATH); or pass `verifier`, any object
        with verify(evidence, report_data) -> claims dict. identity: an Identity (default: a
        fresh in-memory key; use Identity.load_or_create(dir) to keep one). state_dir: where
        interrupted uploads keep their resume state (default ~/.cache/chiron/uploads).

        Raises AttestationError (before any data is sent) or ChironError."""
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ChironError("server %r must be HOST:PORT, e.g. 127.0.0.1:7443" % server)
        if verifier is None:
            if policy is None:
                raise ChironError("connect needs an attestation policy: pass policy=FILE")
            verifier = ratls.PolicyVerifier(policy, chiron=chiron)
        identity = identity or Identity.generate()
        der = ratls.fetch_server_certificate(host, int(port), identity, timeout=timeout)
        claims, spki = ratls.verify_certificate(der, verifier)
        # Pinned: the only root is the certificate whose evidence just verified.
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ratls_pem(der), private_key=identity.key_pem,
            certificate_chain=identity.cert_pem)
        channel = grpc.secure_channel(server, credentials, options=[
            ("grpc.ssl_target_name_override", ratls.SERVER_NAME),
            ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
            ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
            ("grpc.enable_http_proxy", 0),
        ])
        state_dir = state_dir or os.path.join(os.path.expanduser("~"), ".cache", "chiron",
                                              "uploads")
        client = cls(server, identity, channel, claims, spki, verifier, timeout, state_dir)
        try:
            client.server_info = client._call(client.attestation.GetServerInfo,
                                              pb.attestation_pb2.GetServerInfoRequest(),
                                              "GetServerInfo")
            client.insecure = client.insecure or client.server_info.insecure
            client.attest()
            if register:
                client._call(client.principals.Register,
                             pb.principals_pb2.RegisterPrincipalRequest(
                                 role=pb.principals_pb2.ROLE_OWNER,
                                 display_name=display_name), "Principals.Register")
        except BaseException:
            channel.close()
            raise
        if client.insecure:
            warnings.warn("the server at %s runs on the sim platform, a software simulation with "
                          "no hardware protection: do not send real data to it" % server,
                          stacklevel=2)
        return client

    def attest(self):
        """Fresh evidence over a random nonce and both TLS keys of this channel, verified under
        the policy; returns (and keeps in fresh_claims) its claims."""
        nonce = os.urandom(32)
        response = self._call(self.attestation.GetEvidence,
                              pb.attestation_pb2.GetEvidenceRequest(nonce=nonce), "GetEvidence")
        expected = ratls.fresh_report_data(nonce, self.server_spki, self.identity.spki_der)
        self.fresh_claims = self.verifier.verify(response.evidence, expected)
        return self.fresh_claims

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request, name, timeout=None, **kwargs):
        try:
            return method(request, timeout=timeout or self.timeout, **kwargs)
        except grpc.RpcError as error:
            raise from_rpc_error(error, name)

    @property
    def principal_id(self):
        return self.identity.principal_id

    def whoami(self):
        return self._call(self.principals.WhoAmI, pb.principals_pb2.WhoAmIRequest(), "WhoAmI")

    # --- Datasets ---------------------------------------------------------------------------

    def upload_array(self, name, samples, labels, class_names=None, channels_last=True,
                     on_progress=None, target_chunk_size=DEFAULT_CHUNK_TARGET_SIZE):
        """Encrypts a numpy dataset here (docs/formats/dataset.md) and uploads it as `name`.

        samples: uint8 images N×H×W or N×H×W×C (stored [C, H, W]), or float features N×F;
        labels: N class indices. Resumable: if the upload is interrupted, calling again with the
        same name and the same arrays sends only the chunks the server has not stored (the
        resume state, with the data key, lives in state_dir, 0600, until the upload completes).
        on_progress(acknowledged_chunks, total_chunks) after each durable chunk.

        Returns UploadResult. Raises ChironError: the server's refusal (wrong key, tampering,
        name taken, quota), "interrupted after K of N chunks" (call again to resume), or a
        changed input for an interrupted upload (delete_dataset(name) and upload again)."""
        schema, records, fingerprint = arrays.prepare_dataset(samples, labels, class_names,
                                                              channels_last)
        return self._upload(name, schema, records, fingerprint, on_progress, target_chunk_size)

    def upload_idx(self, name, images_path, labels_path=None, count=None, **kwargs):
        """upload_array over an IDX pair (gzip or plain; labels path guessed from the images
        path as `chiron dataset upload` does); `count`: only the first COUNT samples."""
        images, labels, class_names = arrays.read_idx(images_path, labels_path, count)
        return self.upload_array(name, images, labels, class_names, **kwargs)

    def _upload(self, name, schema, records, fingerprint, on_progress, target_chunk_size):
        return upload.upload_dataset(self, name, schema, records, fingerprint, on_progress,
                                     target_chunk_size)

    def datasets(self):
        return list(self._call(self.datasets_stub.List, pb.datasets_pb2.ListDatasetsRequest(),
                               "Datasets.List").datasets)

    def delete_dataset(self, name, force=False):
        return self._call(self.datasets_stub.Delete,
                          pb.datasets_pb2.DeleteDatasetRequest(name=name, force=force),
                          "Datasets.Delete")

    # --- Training ---------------------------------------------------------------------------

    def recipes(self):
        return list(self._call(self.recipes_stub.List, pb.recipes_pb2.ListRecipesRequest(),
                               "Recipes.List").recipes)

    def train(self, dataset, recipe, model, epochs=0, validation_fraction=0.1, seed=0,
              on_progress=None, provider_view="coarse"):
        """Trains `model` from `dataset` with `recipe` (name or id), following the job until it
        ends; on_progress(OwnerJobView) at each update. Returns the final OwnerJobView.

        Raises JobFailedError if the job failed or was cancelled, ChironError otherwise."""
        views = {"coarse": pb.jobs_pb2.PROVIDER_VIEW_COARSE,
                 "done-only": pb.jobs_pb2.PROVIDER_VIEW_DONE_ONLY}
        if provider_view not in views:
            raise ChironError("provider_view must be 'coarse' or 'done-only'")
        started = self._call(self.jobs.StartTraining, pb.jobs_pb2.StartTrainingRequest(
            dataset_name=dataset, recipe_id=recipe, model_name=model,
            validation_fraction=validation_fraction, epochs=epochs, seed=seed,
            provider_view=views[provider_view]), "StartTraining", timeout=max(self.timeout, 120))
        if on_progress:
            on_progress(started)
        return self.watch(started.job_id, on_progress)

    def watch(self, job_id, on_progress=None):
        """Follows a job (Jobs.Watch) until it ends; see train()."""
        last = None
        try:
            for view in self.jobs.Watch(pb.jobs_pb2.JobRef(job_id=job_id)):
                last = view
                if on_progress:
                    on_progress(view)
        except grpc.RpcError as error:
            raise from_rpc_error(error, "Jobs.Watch")
        if last is None or last.state not in _TERMINAL:
            raise ChironError("the watch of job %s ended before the job did: call watch() again"
                              % job_id, grpc.StatusCode.UNAVAILABLE)
        if last.state != pb.jobs_pb2.JOB_STATE_SUCCEEDED:
            failure = pb.jobs_pb2.FailureCategory.Name(last.failure)
            raise JobFailedError("job %s ended %s (%s)" % (job_id, job_state_name(last.state),
                                                           failure.lower()), last)
        return last

    # --- Models -----------------------------------------------------------------------------

    def models(self):
        return list(self._call(self.models_stub.List, pb.models_pb2.ListModelsRequest(),
                               "Models.List").models)

    def model(self, name, owner_id=""):
        """ModelInfo of one of the caller's models, or the SharedModel another owner granted."""
        if owner_id:
            shared = self._call(self.models_stub.ListShared,
                                pb.models_pb2.ListSharedModelsRequest(), "Models.ListShared")
            found = [m for m in shared.models if m.name == name and m.owner_id == owner_id]
        else:
            found = [m for m in self.models() if m.name == name]
        if not found:
            raise ChironError("no model '%s'%s: models() lists yours" %
                              (name, " shared by " + owner_id if owner_id else ""),
                              grpc.StatusCode.NOT_FOUND)
        return found[0]

    def evaluate(self, model, dataset):
        """EvaluationReport of `model` on one of the caller's labelled datasets (computed inside
        the runtime; only aggregate metrics come back)."""
        return self._call(self.models_stub.Evaluate,
                          pb.models_pb2.EvaluateRequest(model_name=model, dataset_name=dataset),
                          "Models.Evaluate", timeout=max(self.timeout, 300))

    def set_limits(self, model, rate_per_minute=None, query_budget=None):
        request = pb.models_pb2.SetModelLimitsRequest(name=model)
        if rate_per_minute is not None:
            request.rate_per_minute = rate_per_minute
        if query_budget is not None:
            request.query_budget = query_budget
        return self._call(self.models_stub.SetLimits, request, "Models.SetLimits")

    def predict(self, model, samples, top_k=0, owner_id="", channels_last=True,
                max_wait=MAX_RETRY_AFTER_SECONDS, batch_size=64):
        """Predictions for a numpy batch (same layout as the training arrays), in order.

        Samples go in requests of batch_size, at most the model's max_batch (a request larger
        than the rate limit's per-minute count could never pass). Refused by the model's rate
        limit, the call waits the server's retry-after-ms and tries again, as long as the total
        wait stays within max_wait seconds (0: never wait); beyond, RateLimitedError.
        Returns [Prediction(classes, probabilities, names)], best class first."""
        info = self.model(model, owner_id)
        raw = arrays.prediction_samples(info, samples, channels_last)
        batch = max(1, min(batch_size, info.max_batch or batch_size))
        names = list(info.class_names)
        out = []
        waited = 0.0
        position = 0
        while position < len(raw):
            request = pb.models_pb2.PredictRequest(model_name=model,
                                                   samples=raw[position:position + batch],
                                                   top_k=top_k, owner_id=owner_id)
            try:
                response = self.models_stub.Predict(request, timeout=max(self.timeout, 120))
            except grpc.RpcError as error:
                retry_after = _retry_after(error)
                if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after:
                    if waited + retry_after > max_wait:
                        raise RateLimitedError(
                            "Models.Predict: %s (%d of %d samples answered; the server asks to "
                            "wait %.1f s)" % (error.details(), len(out), len(raw), retry_after),
                            retry_after, error.code())
                    time.sleep(retry_after)
                    waited += retry_after
                    continue
                raise from_rpc_error(error, "Models.Predict")
            for p in response.predictions:
                classes = list(p.classes)
                out.append(Prediction(classes, list(p.probabilities),
                                      [names[c] if c < len(names) else str(c)
                                       for c in classes]))
            position += len(request.samples)
        return out

    # --- Audit ------------------------------------------------------------------------------

    def audit_records(self):
        """Every record of the caller's audit chain, from sequence 1 (not verified)."""
        records = []
        start = 1
        while True:
            response = self._call(self.audit_stub.List,
                                  pb.audit_pb2.ListAuditRequest(from_sequence=start),
                                  "Audit.List")
            if not response.records:
                return records
            for record in response.records:
                if len(record.subject) > audit.MAX_SUBJECT_SIZE or \
                        len(record.event) > audit.MAX_EVENT_SIZE or \
                        len(record.principal_id) > audit.MAX_PRINCIPAL_ID_SIZE:
                    raise ChironError("an audit record has an oversized field: the server is "
                                      "not behaving as a Chiron runtime must")
            records.extend(response.records)
            if records[-1].sequence < start:
                raise ChironError("Audit.List went backwards: the server is not behaving as a "
                                  "Chiron runtime must")
            start = records[-1].sequence + 1
            if len(records) > 1 << 24:
                raise ChironError("more than 16M audit records; refusing to hold more")

    def audit(self, head_file=None):
        """The caller's audit records, verified end to end (audit.verify_chain). With head_file
        (a path), the chain must also extend the head verified last time, which detects a
        truncated or rolled-back log; the new head is saved there.

        Raises AuditChainError naming the broken record."""
        records = self.audit_records()
        heads = audit.AuditHeadFile(head_file) if head_file else None
        previous = heads.load(self.server, self.principal_id) if heads else None
        head = audit.verify_chain(records, self.principal_id, previous)
        if heads and head:
            heads.save(self.server, self.principal_id, head)
        return records


def ratls_pem(der):
    import ssl

    return ssl.DER_cert_to_PEM_cert(der).encode("ascii")


def _retry_after(error):
    """The server's retry-after-ms in seconds, if it sent one we believe (1 ms .. 2 min)."""
    try:
        metadata = error.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - not every RpcError carries metadata
        return 0.0
    for key, value in metadata:
        if key == "retry-after-ms":
            if isinstance(value, bytes):
                value = value.decode("ascii", "replace")
            if value.isdigit() and 0 < int(value) <= MAX_RETRY_AFTER_SECONDS * 1000:
                return int(value) / 1000.0
    return 0.0
