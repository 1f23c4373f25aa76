"""chiron_client: a data owner's Python client for Chiron (docs/python-client.md).

Attests chirond under a policy and pins its certificate, uploads numpy arrays or IDX files
encrypted on the client in the dataset container format, trains with live progress, evaluates,
predicts on numpy arrays, and verifies the owner's audit chain.
"""

from .errors import (AttestationError, AuditChainError, ChironError, JobFailedError,
                     RateLimitedError)
from .identity import Identity
from .client import Client, Prediction, UploadResult, job_state_name, print_progress

__all__ = ["AttestationError", "AuditChainError", "ChironError", "Client", "Identity",
           "JobFailedError", "Prediction", "RateLimitedError", "UploadResult", "job_state_name",
           "print_progress"]
