"""The Python owner client against a real chirond (sim platform, sandboxed worker, built-in mlp).

1. The whole session of docs/python-client.md, run from the page itself: every ```python block,
   in order, in one namespace (so the page cannot drift from the client), then checked.
2. Hostile cases: a server whose evidence fails the policy is refused before anything moves; a
   server without evidence, and one relaying the real evidence in a certificate for its own key,
   are refused; tampered containers are refused by the server; an interrupted upload resumes and
   a changed input is refused; predict waits out the rate limit or says how long to wait.

Run by ctest (python_client_session_test) with PYTHONPATH=clients/python:build/python and
CHIRON_BUILD_DIR set; always with /usr/bin/python3.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc
import numpy as np

import chiron_client
from chiron_client import AttestationError, ChironError, Client, Identity, RateLimitedError
from chiron_client import _stubs as pb
from chiron_client import ratls
from chiron_client.arrays import read_idx
from chiron_client.container import ContainerWriter, Schema, ELEMENT_U8

BUILD = os.environ.get("CHIRON_BUILD_DIR", "build")
SOURCE = os.environ.get("CHIRON_SOURCE_DIR",
                        os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
FASHION = "/usr/share/datasets/fashion-mnist"
CHIRON = os.path.join(BUILD, "bin", "chiron")


class Chirond:
    """chirond on the sim platform with the real worker, on a free loopback port."""

    def __init__(self, directory):
        self.directory = directory
        sandbox_policy = os.path.join(directory, "sandbox-policy.txt")
        subprocess.run([os.path.join(BUILD, "bin", "chiron_sandbox_policy_gen"), sandbox_policy],
                       check=True)
        port_file = os.path.join(directory, "port")
        self.policy = os.path.join(directory, "sim-policy.json")
        self.log_path = os.path.join(directory, "chirond.log")
        self.arguments = ["--platform", "sim", "--state", os.path.join(directory, "state"),
                          "--worker", os.path.join(BUILD, "bin", "chiron-worker"),
                          "--sandbox-policy", sandbox_policy, "--port-file", port_file,
                          "--write-sim-policy", self.policy]
        self.start("127.0.0.1:0")

    def start(self, listen):
        port_file = os.path.join(self.directory, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [os.path.join(BUILD, "bin", "chirond"), "--listen", listen] + self.arguments,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.path.exists(port_file):
                with open(port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.address = "127.0.0.1:" + text.strip()
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("chirond did not start; its log:\n" + self.log())

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def doc_session_blocks():
    """The ```python blocks of docs/python-client.md, in order, with their line numbers."""
    path = os.path.join(SOURCE, "docs", "python-client.md")
    with open(path) as f:
        text = f.read()
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, re.S | re.M):
        line = text.count("\n", 0, match.start(1)) + 1
        blocks.append((line, match.group(1)))
    return path, blocks


class OneShotTlsServer:
    """A TLS 1.3 server on loopback that presents `cert_pem`/`key_pem` to whoever connects."""

    def __init__(self, directory, cert_pem, key_pem):
        cert_path = os.path.join(directory, "fake-cert.pem")
        key_path = os.path.join(directory, "fake-key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        with open(key_path, "wb") as f:
            f.write(key_pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, key_path)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handshakes = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.listener.settimeout(20)
        try:
            connection, _ = self.listener.accept()
            with self.context.wrap_socket(connection, server_side=True) as tls:
                self.handshakes += 1
                tls.settimeout(5)
                try:
                    tls.recv(1)  # anything the client sends after the handshake
                except (OSError, ssl.SSLError):
                    pass
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.listener.close()
        self.thread.join(timeout=10)


def self_signed(extensions=()):
    """(cert_pem, key_pem) of a fresh P-256 key, with extra (oid, value) extensions."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "not-chirond")])
    now = datetime.datetime.utcnow()
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(ratls.SERVER_NAME)]),
                              critical=False))
    for oid, value in extensions:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class ClientSessionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(FASHION + "/train-images-idx3-ubyte.gz"):
            raise unittest.SkipTest("install Debian's dataset-fashion-mnist")
        cls.directory = tempfile.mkdtemp(prefix="chiron-python-client-")
        cls.server = Chirond(cls.directory)
        cls.home = os.path.join(cls.directory, "owner")
        os.environ["CHIRON_CLI"] = CHIRON
        os.environ["CHIRON_SERVER"] = cls.server.address
        os.environ["CHIRON_POLICY"] = cls.server.policy
        os.environ["CHIRON_PY_HOME"] = cls.home
        cls.namespace = None

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.directory, ignore_errors=True)

    def run(self, result=None):
        failures = len(result.failures) + len(result.errors) if result else 0
        outcome = super().run(result)
        if result and len(result.failures) + len(result.errors) > failures:
            print("chirond's log:\n" + self.server.log()[-6000:], file=sys.stderr)
        return outcome

    def owner_client(self, **kwargs):
        return Client.connect(self.server.address, policy=self.server.policy,
                              identity=Identity.load_or_create(self.home),
                              state_dir=os.path.join(self.directory, "test-uploads"), **kwargs)

    # --- 1. The documented session --------------------------------------------------------

    def test_1_the_documented_session_runs_as_written(self):
        path, blocks = doc_session_blocks()
        self.assertGreaterEqual(len(blocks), 5, "docs/python-client.md lost its session blocks")
        namespace = {"__name__": "docs_python_client"}
        for line, code in blocks:
            exec(compile("\n" * (line - 1) + code, path, "exec"), namespace)
        type(self).namespace = namespace

        self.assertEqual(namespace["claims"]["platform"], "sim")
        self.assertTrue(namespace["client"].insecure)
        self.assertEqual(namespace["uploaded"].samples, 3000)
        job = namespace["job"]
        self.assertEqual(job.state, pb.jobs_pb2.JOB_STATE_SUCCEEDED)
        self.assertEqual(job.epochs_done, 1)
        # Far above chance (0.1) after one epoch on 3,000 images; generous, never about timing.
        self.assertGreater(job.history[-1].validation_accuracy, 0.4)
        report = namespace["report"]
        self.assertEqual(report.sample_count, 1000)
        self.assertGreater(report.accuracy, 0.4)
        predictions = namespace["predictions"]
        self.assertEqual(len(predictions), 8)
        for prediction in predictions:
            self.assertEqual(len(prediction.classes), 3)
            self.assertEqual(prediction.names[0], namespace["classes"][prediction.classes[0]])
        correct = sum(p.classes[0] == t for p, t in zip(predictions, namespace["test_labels"]))
        self.assertGreaterEqual(correct, 3)
        events = [r.event for r in namespace["records"]]
        for event in ("principal.register", "dataset.upload", "job.train", "model.evaluate",
                      "model.predict"):
            self.assertIn(event, events)
        # The verified head is remembered: a rolled-back log would now be detected.
        with open(os.path.join(self.home, "audit-heads.json")) as f:
            heads = json.load(f)
        self.assertEqual(list(heads.values())[0]["sequence"], namespace["records"][-1].sequence)
        # The resume state of the finished uploads is gone (it held the data keys).
        self.assertEqual(os.listdir(os.path.join(self.home, "uploads")), [])

    def test_2_predict_waits_out_the_rate_limit(self):
        if self.namespace is None:
            self.skipTest("needs the model of the documented session")
        test_images = self.namespace["test_images"]
        with self.owner_client() as client:
            # One token a second, a full bucket of 60: one request of 60 empties it, and the
            # next 10 samples pass only after about 10 s (unless that one request took as long).
            client.set_limits("fashion-mlp", rate_per_minute=60)
            self.assertEqual(len(client.predict("fashion-mlp", test_images[:60],
                                                batch_size=60)), 60)
            with self.assertRaises(RateLimitedError) as refused:
                client.predict("fashion-mlp", test_images[60:70], batch_size=10, max_wait=0)
            self.assertGreater(refused.exception.retry_after, 0)
            self.assertLessEqual(refused.exception.retry_after, 10)
            self.assertEqual(refused.exception.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
            waited = client.predict("fashion-mlp", test_images[60:70], batch_size=10)
            self.assertEqual(len(waited), 10)
            client.set_limits("fashion-mlp", rate_per_minute=0)
            # A sample of another shape is refused on the client, naming both shapes.
            with self.assertRaisesRegex(ChironError, "28x28.*not 28x27"):
                client.predict("fashion-mlp", test_images[:2, :, :27])

    # --- 2. Hostile servers ----------------------------------------------------------------

    def test_3_a_restarted_server_is_refused_by_the_pinned_channel_until_attested_again(self):
        if self.namespace is None:
            self.skipTest("needs the audit head of the documented session")
        heads = os.path.join(self.home, "audit-heads.json")
        pinned = self.owner_client()
        with pinned:
            pinned.audit(head_file=heads)
            self.server.stop()
            self.server.start(self.server.address)  # same port, same state; a new TLS key
            with self.assertRaises(ChironError) as refused:
                pinned.whoami()
            self.assertEqual(refused.exception.code, grpc.StatusCode.UNAVAILABLE)
        with self.owner_client() as again:
            self.assertNotEqual(again.server_spki, pinned.server_spki)
            self.assertEqual(again.whoami().id, pinned.principal_id)
            # The chain survived the restart and still extends the head verified before it.
            records = again.audit(head_file=heads)
            self.assertGreaterEqual(len(records), len(self.namespace["records"]))

    def test_policy_the_server_fails_is_refused_before_anything_moves(self):
        with open(self.server.policy) as f:
            policy = json.load(f)
        policy["allowed_measurements"]["sim"] = ["00" * 48]
        wrong = os.path.join(self.directory, "wrong-measurement.json")
        with open(wrong, "w") as f:
            json.dump(policy, f)
        stranger = Identity.generate()
        with self.assertRaisesRegex(AttestationError, "measurement"):
            Client.connect(self.server.address, policy=wrong, identity=stranger)
        # Not even its key was registered: the refused client sent no call at all.
        client = Client.connect(self.server.address, policy=self.server.policy,
                                identity=stranger, register=False)
        with client:
            with self.assertRaises(ChironError) as unknown:
                client.whoami()
            self.assertNotEqual(unknown.exception.code, None)
            self.assertNotIn(stranger.principal_id, self.server.log())

    def test_server_without_evidence_is_refused(self):
        cert_pem, key_pem = self_signed()
        fake = OneShotTlsServer(self.directory, cert_pem, key_pem)
        try:
            with self.assertRaisesRegex(AttestationError, "no Chiron evidence extension"):
                Client.connect("127.0.0.1:%d" % fake.port, policy=self.server.policy)
        finally:
            fake.close()
        self.assertEqual(fake.handshakes, 1)

    def test_relayed_evidence_in_another_keys_certificate_is_refused(self):
        # The genuine server's evidence extension, copied into a certificate for another key:
        # the evidence verifies, but it binds the genuine key, not this one.
        der = ratls.fetch_server_certificate("127.0.0.1", int(self.server.address.split(":")[1]),
                                             Identity.generate())
        from cryptography import x509

        genuine = x509.load_der_x509_certificate(der).extensions.get_extension_for_oid(
            x509.ObjectIdentifier(ratls.EVIDENCE_EXTENSION_OID)).value.value
        cert_pem, key_pem = self_signed([(ratls.EVIDENCE_EXTENSION_OID, genuine)])
        fake = OneShotTlsServer(self.directory, cert_pem, key_pem)
        try:
            with self.assertRaisesRegex(AttestationError, "report data"):
                Client.connect("127.0.0.1:%d" % fake.port, policy=self.server.policy)
        finally:
            fake.close()

    # --- 3. Containers and uploads ---------------------------------------------------------

    def begin(self, client, name, writer, key):
        return client.datasets_stub.BeginUpload(pb.datasets_pb2.BeginUploadRequest(
            name=name, container_header=writer.header, data_key=key), timeout=30)

    def small_writer(self, key, samples=120):
        images, labels, classes = read_idx(FASHION + "/t10k-images-idx3-ubyte.gz", count=samples)
        schema = Schema(ELEMENT_U8, images.shape[1:], classes, samples)
        writer = ContainerWriter(schema, key, os.urandom(16), os.urandom(7),
                                 target_chunk_size=schema.record_size * 40)
        records = np.concatenate([labels.reshape(-1, 1), images.reshape(samples, -1)], axis=1)
        return writer, records

    def test_tampered_chunk_is_refused_by_the_server(self):
        key = os.urandom(32)
        writer, records = self.small_writer(key)
        self.assertEqual(writer.chunk_count, 3)
        with self.owner_client() as client:
            begin = self.begin(client, "tampered-chunk", writer, key)
            chunks = []
            for index in range(writer.chunk_count):
                part = records[index * 40:(index + 1) * 40].tobytes()
                sealed = bytearray(writer.seal_chunk(index, part))
                if index == 1:
                    sealed[100] ^= 0x01  # one flipped bit inside chunk 1
                chunks.append(pb.datasets_pb2.UploadChunk(
                    dataset_id=begin.dataset_id, index=index,
                    last=index == writer.chunk_count - 1, sealed=bytes(sealed)))
            acknowledged = 0
            with self.assertRaises(grpc.RpcError) as refused:
                for ack in client.datasets_stub.Upload(iter(chunks), timeout=60):
                    acknowledged = ack.acknowledged_through
            self.assertEqual(refused.exception.code(), grpc.StatusCode.DATA_LOSS)
            self.assertIn("authentication", refused.exception.details())
            self.assertLessEqual(acknowledged, 1)
            info = [d for d in client.datasets() if d.name == "tampered-chunk"][0]
            self.assertFalse(info.complete)
            self.assertLessEqual(info.acknowledged_chunks, 1)

    def test_tampered_header_and_wrong_key_are_refused_by_the_server(self):
        key = os.urandom(32)
        writer, _ = self.small_writer(key)
        with self.owner_client() as client:
            header = bytearray(writer.header)
            # The first class name's first byte ("T-shirt/top" -> "U-shirt/top"): still a valid
            # header, but no longer the one the owner's key authenticated.
            self.assertEqual(header[66:77], b"T-shirt/top")
            header[66] ^= 0x01
            writer.header = bytes(header)
            with self.assertRaises(grpc.RpcError) as refused:
                self.begin(client, "tampered-header", writer, key)
            self.assertEqual(refused.exception.code(), grpc.StatusCode.DATA_LOSS)
            writer, _ = self.small_writer(key)
            with self.assertRaises(grpc.RpcError) as wrong_key:
                self.begin(client, "wrong-key", writer, os.urandom(32))
            self.assertEqual(wrong_key.exception.code(), grpc.StatusCode.DATA_LOSS)
            self.assertIn("wrong key", wrong_key.exception.details())
            names = [d.name for d in client.datasets()]
            self.assertNotIn("tampered-header", names)
            self.assertNotIn("wrong-key", names)

    def test_interrupted_upload_resumes_and_a_changed_input_is_refused(self):
        images, labels, classes = read_idx(FASHION + "/train-images-idx3-ubyte.gz", count=600)
        record_size = 1 + 28 * 28

        class Interrupt(Exception):
            pass

        def interrupt_after_two(done, total):
            if done >= 2:
                raise Interrupt()

        with self.owner_client() as client:
            with self.assertRaises(Interrupt):
                client.upload_array("resumed", images, labels, classes,
                                    on_progress=interrupt_after_two,
                                    target_chunk_size=record_size * 50)
            state_files = os.listdir(client.state_dir)
            self.assertEqual(len(state_files), 1)
            with open(os.path.join(client.state_dir, state_files[0])) as f:
                self.assertIn("data_key", json.load(f))
            self.assertEqual(os.stat(os.path.join(client.state_dir, state_files[0])).st_mode
                             & 0o077, 0)
            changed = labels.copy()
            changed[0] = (changed[0] + 1) % 10
            with self.assertRaisesRegex(ChironError, "changed since it began") as refused:
                client.upload_array("resumed", images, changed, classes,
                                    target_chunk_size=record_size * 50)
            self.assertEqual(refused.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
            result = client.upload_array("resumed", images, labels, classes)
            self.assertEqual(result.chunks, 12)
            self.assertGreaterEqual(result.resumed_from, 2)
            self.assertLess(result.resumed_from, 12)
            self.assertEqual(os.listdir(client.state_dir), [])
            info = [d for d in client.datasets() if d.name == "resumed"][0]
            self.assertTrue(info.complete)
            self.assertEqual(info.sample_count, 600)
            # The resumed container is the one the server verified end to end: train on it.
            job = client.train("resumed", recipe="mlp", model="resumed-mlp", epochs=1)
            self.assertEqual(job.state, pb.jobs_pb2.JOB_STATE_SUCCEEDED)


if __name__ == "__main__":
    print("chiron_client from", os.path.dirname(chiron_client.__file__))
    unittest.main(verbosity=2)
