"""Builds the `baton` package, generating its gRPC stubs first.

The stubs (baton/v1/*_pb2.py, *_pb2_grpc.py, *_pb2.pyi) are generated with
grpcio-tools from the repository's proto/ folder (../../proto, or the folder
named by BATON_PROTO_DIR) every time the package is built, so they always match
the protos. They import each other as `baton.v1.xxx_pb2`, which is why they are
generated into this package. They are not checked in (see .gitignore). A build
from an sdist, which has no proto folder beside it, uses the stubs the sdist
carries.

The package's dependencies are computed here: grpcio and protobuf at least as
new as the versions the stubs were generated for (the generated code refuses
older runtimes at import time).
"""

from __future__ import annotations

import importlib.resources
import os
import re
import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
OUT = HERE / "baton" / "v1"


def proto_dir() -> Path | None:
    env = os.environ.get("BATON_PROTO_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(HERE.parent.parent / "proto")
    for c in candidates:
        if (c / "baton" / "v1").is_dir():
            return c
    return None


def generate() -> None:
    src = proto_dir()
    if src is None:
        if any(OUT.glob("*_pb2.py")):
            return  # an sdist: use the stubs it carries
        sys.exit("setup.py: proto/baton/v1 not found; set BATON_PROTO_DIR to the repository's proto/ folder")
    from grpc_tools import protoc

    for old in list(OUT.glob("*_pb2.py")) + list(OUT.glob("*_pb2.pyi")) + list(OUT.glob("*_pb2_grpc.py")):
        old.unlink()
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    files = sorted(str(p.relative_to(src)) for p in (src / "baton" / "v1").glob("*.proto"))
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{src}",
            f"-I{well_known}",
            f"--python_out={HERE}",
            f"--pyi_out={HERE}",
            f"--grpc_python_out={HERE}",
            *files,
        ]
    )
    if rc != 0:
        sys.exit(f"setup.py: grpc_tools.protoc failed ({rc}) on {src}")


def dependencies() -> list[str]:
    """grpcio and protobuf no older than the generated code requires."""
    grpc_version = protobuf_version = None
    for f in sorted(OUT.glob("*_pb2_grpc.py")):
        m = re.search(r"GRPC_GENERATED_VERSION = '([0-9.]+)'", f.read_text())
        if m:
            grpc_version = m.group(1)
            break
    for f in sorted(OUT.glob("*_pb2.py")):
        m = re.search(r"# Protobuf Python Version: ([0-9.]+)", f.read_text())
        if m:
            protobuf_version = m.group(1)
            break
    deps = [f"grpcio>={grpc_version or '1.60'}"]
    deps.append(f"protobuf>={protobuf_version}" if protobuf_version else "protobuf>=4.25")
    return deps


generate()
setup(install_requires=dependencies())
