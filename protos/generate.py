"""Regenerate the Python stubs of the workmesh protos, or check them for drift.

python protos/generate.py          # rewrite protos/workmesh/v1/*_pb2*.py and *.pyi
python protos/generate.py --check  # exit 1 when the committed stubs differ from the protos
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "workmesh" / "v1"
GENERATED = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out: Path) -> list[Path]:
    """Compile every proto under protos/workmesh/v1 into `out`; return the generated files."""
    protos = sorted(str(p.relative_to(ROOT)) for p in PACKAGE.glob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p for p in (out / "workmesh" / "v1").iterdir() if p.name.endswith(GENERATED))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail on drift instead of writing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        committed = sorted(p for p in PACKAGE.iterdir() if p.name.endswith(GENERATED))
        if args.check:
            names = {p.name for p in fresh}
            drift = [
                p.name for p in fresh if not (PACKAGE / p.name).exists() or not filecmp.cmp(p, PACKAGE / p.name, False)
            ]
            drift += [p.name for p in committed if p.name not in names]
            if drift:
                print("generated stubs differ from protos/: " + ", ".join(drift), file=sys.stderr)
                print("run: python protos/generate.py", file=sys.stderr)
                return 1
            print(f"stubs in sync ({len(fresh)} files)")
            return 0
        for stale in committed:
            stale.unlink()
        for path in fresh:
            shutil.copy(path, PACKAGE / path.name)
        print(f"wrote {len(fresh)} files to {PACKAGE.relative_to(ROOT.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
