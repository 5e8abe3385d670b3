"""The sandbox and adversarial suites again, as `nobody`, when the test run is root.

Most instructors grade without root (a laptop, a JupyterHub). There the grader, the
course files and the learners' code share one uid, so only the sandbox stands between
a submission and the gradebook. CI runs as root, so this test re-runs both suites as
the unprivileged account `nobody` (through setpriv); run unprivileged, the suite
itself already covers that case and this test has nothing to add.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.unprivileged import interpreter, refused_as_nobody, run_pytest_as_nobody

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="this run is already unprivileged")
SUITES = ["tests/test_grader_sandbox.py", "tests/test_grader_adversarial.py"]


@pytest.fixture
def scratch():
    """A folder `nobody` can reach (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="autograder-nobody-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_sandbox_and_adversarial_suites_pass_as_nobody(scratch):
    python = interpreter(scratch)
    if python is None:
        pytest.fail("no Python that `nobody` can run was found (setpriv missing, or no "
                    "system python of this version for a stand-in venv)")
    refused = refused_as_nobody(python, scratch)
    if refused:
        pytest.skip(f"this kernel refuses user namespaces to `nobody` ({refused}); the "
                    "grader refuses to grade there too, unless --allow-unisolated")
    done = run_pytest_as_nobody(python, SUITES, scratch, timeout=1500)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    print(f"as nobody: {summary}")
    assert done.returncode == 0, (done.stdout[-6000:] + done.stderr[-3000:])
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 40, summary
