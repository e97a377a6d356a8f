"""Build steps of the quantd client beyond pyproject.toml: the gRPC stubs of proto/quantd/v1 are
generated at build time (never committed) into the wheel's quantd/v1/, and an sdist carries the
.proto files so that it builds on its own.

Where the .proto files are read from, first found: $QUANTD_PROTO_DIR, ./proto (an unpacked sdist),
../../proto (this directory inside the quantd repository). The stubs are made by `protoc` and
`grpc_python_plugin` (Debian: protobuf-compiler, protobuf-compiler-grpc); python3-grpc-tools is not
used, because Debian 12's (1.14) bundles a protoc that rejects proto3 `optional`.
"""
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = ("job", "quantization_service", "worker_service")


def proto_root():
    candidates = (os.environ.get("QUANTD_PROTO_DIR"), os.path.join(HERE, "proto"),
                  os.path.join(HERE, "..", "..", "proto"))
    for root in candidates:
        if root and all(os.path.isfile(os.path.join(root, "quantd", "v1", p + ".proto"))
                        for p in PROTOS):
            return os.path.abspath(root)
    raise SystemExit("quantd: proto/quantd/v1/*.proto not found (looked in $QUANTD_PROTO_DIR, "
                     f"{candidates[1]}, {candidates[2]}); build from the quantd repository's "
                     "client/python or from an sdist, or set QUANTD_PROTO_DIR")


def generate_stubs(out_dir):
    tools = {name: shutil.which(name) for name in ("protoc", "grpc_python_plugin")}
    if not all(tools.values()):
        raise SystemExit("quantd: building the client needs protoc and grpc_python_plugin on PATH "
                         "(Debian: apt install protobuf-compiler protobuf-compiler-grpc)")
    root = proto_root()
    subprocess.run([tools["protoc"], f"--proto_path={root}", f"--python_out={out_dir}",
                    f"--grpc_python_out={out_dir}",
                    f"--plugin=protoc-gen-grpc_python={tools['grpc_python_plugin']}",
                    *(os.path.join(root, "quantd", "v1", p + ".proto") for p in PROTOS)],
                   check=True)
    open(os.path.join(out_dir, "quantd", "v1", "__init__.py"), "w").close()


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        generate_stubs(self.build_lib)


class SdistWithProtos(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        dest = os.path.join(base_dir, "proto", "quantd", "v1")
        os.makedirs(dest, exist_ok=True)
        for p in PROTOS:
            shutil.copy(os.path.join(proto_root(), "quantd", "v1", p + ".proto"), dest)


setup(cmdclass={"build_py": BuildPyWithStubs, "sdist": SdistWithProtos})
