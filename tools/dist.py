"""`make dist`: the course package as a wheel and an sdist (dist/ by default).

Only ``attention_course`` (with the exercises' checks) and ``attention_course_learner``
go in; solutions, the grader and the tests stay out (MANIFEST.in, tests/test_dist.py).
Builds with the setuptools of the running Python: no network, no build isolation.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def version(root: Path = ROOT) -> str:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def wheel_name(root: Path = ROOT) -> str:
    """The wheel's file name (import name, version, pure Python)."""
    return f"attention_course-{version(root)}-py3-none-any.whl"


def _build(kind: str, out: Path) -> Path:
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # setuptools packs whatever is in build/lib: a module deleted from the source would
    # otherwise live on in the wheel.
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    code = ("import sys; from setuptools import build_meta as b; "
            f"print(b.build_{kind}(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"building the {kind} failed:\n{done.stderr[-3000:]}")
    return out / done.stdout.strip().splitlines()[-1]


def build_wheel(out: Path) -> Path:
    return _build("wheel", out)


def build_sdist(out: Path) -> Path:
    return _build("sdist", out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "dist"))
    parser.add_argument("--wheel-only", action="store_true")
    args = parser.parse_args(argv)
    built = [build_wheel(Path(args.out))] + ([] if args.wheel_only else [build_sdist(Path(args.out))])
    for path in built:
        print("built", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
