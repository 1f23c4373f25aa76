"""The gRPC stubs of chiron.v1, generated at build time (never committed).

`cmake --build build --target chiron_python_stubs` runs Debian's protoc with grpc_python_plugin
into build/python/chiron/v1/ (clients/python/CMakeLists.txt). That directory must be importable:
put build/python on PYTHONPATH, or set CHIRON_PYTHON_STUBS to it.
"""

import os
import sys

from .errors import ChironError

_stubs_dir = os.environ.get("CHIRON_PYTHON_STUBS")
if _stubs_dir and _stubs_dir not in sys.path:
    sys.path.insert(0, _stubs_dir)

try:
    from chiron.v1 import attestation_pb2, attestation_pb2_grpc  # noqa: F401
    from chiron.v1 import audit_pb2, audit_pb2_grpc  # noqa: F401
    from chiron.v1 import datasets_pb2, datasets_pb2_grpc  # noqa: F401
    from chiron.v1 import jobs_pb2, jobs_pb2_grpc  # noqa: F401
    from chiron.v1 import models_pb2, models_pb2_grpc  # noqa: F401
    from chiron.v1 import principals_pb2, principals_pb2_grpc  # noqa: F401
    from chiron.v1 import recipes_pb2, recipes_pb2_grpc  # noqa: F401
except ImportError as error:
    raise ChironError(
        "the chiron.v1 Python stubs are not importable (%s): build them with `cmake --build "
        "build --target chiron_python_stubs` and put build/python on PYTHONPATH (or set "
        "CHIRON_PYTHON_STUBS=build/python)" % error)
