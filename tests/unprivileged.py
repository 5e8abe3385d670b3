"""Running the grader's tests as an unprivileged user, the way most instructors grade.

CI runs as root; `make test` re-runs the sandbox and adversarial tests as `nobody`
(tests/test_grader_unprivileged.py) through ``setpriv``. The course's interpreter may
live where `nobody` cannot reach it (pyenv under /root, say); then a small venv over
a system Python of the same version, seeing the same site-packages through a .pth
file, stands in for it.
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

NOBODY = 65534


def as_user(uid: int = NOBODY) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def _works(python: str, home: Path) -> bool:
    """``python`` runs as nobody and can start itself again (as the factory does)."""
    probe = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
             "'import numpy, torch, nbgrader'], check=True)")
    done = subprocess.run([*as_user(), python, "-c", probe], capture_output=True,
                          env={**os.environ, "HOME": str(home)}, timeout=300)
    return done.returncode == 0


def interpreter(scratch: Path) -> str | None:
    """A Python that `nobody` can run, with this interpreter's packages, or None."""
    if shutil.which("setpriv") is None:
        return None
    scratch.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch, 0o755)
    if _works(sys.executable, scratch):
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = (shutil.which(version), f"/usr/bin/{version}",
                  f"/usr/local/bin/{version}")
    for base in candidates:
        if not base or not os.access(base, os.X_OK):
            continue
        venv = scratch / "nobody-venv"
        shutil.rmtree(venv, ignore_errors=True)
        made = subprocess.run([base, "-m", "venv", "--without-pip", str(venv)],
                              capture_output=True)
        if made.returncode != 0:
            continue
        packages = next(venv.glob("lib/python*/site-packages"))
        (packages / "course.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        python = str(venv / "bin" / "python")
        # nbconvert's templates (nbgrader's feedback) are found under sys.prefix/share;
        # not the kernelspecs: they name an interpreter `nobody` may not run.
        (venv / "share" / "jupyter").mkdir(parents=True)
        (venv / "share" / "jupyter" / "nbconvert").symlink_to(
            Path(sys.prefix) / "share" / "jupyter" / "nbconvert", target_is_directory=True)
        alembic = venv / "bin" / "alembic"  # nbgrader runs it as a command
        alembic.write_text(f"#!{python}\nimport sys\nfrom alembic.config import main\n"
                           "sys.exit(main())\n")
        alembic.chmod(0o755)
        if _works(python, scratch):
            return python
    return None


def refused_as_nobody(python: str, scratch: Path) -> str:
    """Why `nobody` may not create the sandbox's namespaces here ("" if it may)."""
    code = ("from autograder.sandbox.isolation import namespaces_refused; "
            "print(namespaces_refused())")
    course = Path(__file__).resolve().parents[1]
    done = subprocess.run([*as_user(), python, "-c", code], cwd=course,
                          capture_output=True, text=True,
                          env={**os.environ, "HOME": str(scratch)}, timeout=120)
    return done.stdout.strip() if done.returncode == 0 else done.stderr.strip()[-500:]


def run_pytest_as_nobody(python: str, tests: list[str], scratch: Path,
                         timeout: float) -> subprocess.CompletedProcess:
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, NOBODY, NOBODY)
    env = {**os.environ, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1",
           "TMPDIR": str(home)}
    env.pop("PYTEST_ADDOPTS", None)
    course = Path(__file__).resolve().parents[1]
    command = [*as_user(), python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--basetemp", str(home / "pytest"), "-rs", *tests]
    return subprocess.run(command, cwd=course, capture_output=True, text=True, env=env,
                          timeout=timeout)
