"""A student with only the wheel: every released exercise notebook, executed as they would.

One fresh virtual environment holds the course wheel, its declared dependencies and
ipykernel (the notebook's kernel) and nothing else: no repository on the path, no book
toolchain. It is kept in _build/student-venv between sessions, keyed by the dependency
pins (about 2 minutes to create, seconds to reuse); the wheel is rebuilt and reinstalled
every session. Each notebook runs in nbclient in a temporary folder:

* with the reference solutions filled in, every visible test cell passes;
* with one known mistake, the failing cell names it in at most 10 lines, with no frame
  of the course's checker;
* ex1 again with torch made unimportable passes (it is NumPy-only);
* without the course package, the setup cell and the first test cell print the install
  instructions instead of a traceback.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from autograder.assignment import available_assignments, is_test_cell, nbgrader_metadata
from tests.adversarial import mistakes
from tools import course_links, dist
from tools.book import ROOT

pytestmark = pytest.mark.slow

VENV = ROOT / "_build" / "student-venv"
KERNEL = "course-wheel"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$\n?", re.M)

# One known mistake per exercise: (case in tests/adversarial/mistakes.py, test cell, phrase).
MISTAKES = {
    "ex1_attention": ("scaled_by_d_k", "test_attention_matches_torch", "divided by d_k"),
    "ex2_multihead": ("scaled_by_d_model", "test_mha_matches_torch", "√d_model"),
    "ex3_transformer": ("sin_cos_swapped", "test_positional_encoding_values", "sin and cos are swapped"),
    "ex4_applications": ("temperature_multiplied", "test_sampling_distribution",
                         "multiplied by the temperature"),
    "ex5_rope_cache": ("rope_interleaved", "test_rope_values", "interleaved"),
}


def _pins() -> str:
    """The course environment's versions, so the fresh venv resolves offline and the same.

    Read by a fresh interpreter: other tests may have put other folders (a system
    Python's packages, for instance) on this process's sys.path.
    """
    code = ("import importlib.metadata as m\n"
            "names = sorted(f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions()\n"
            "               if d.metadata['Name'] and d.metadata['Name'].lower()\n"
            "               not in ('attention-course', 'pip'))\n"
            "print('\\n'.join(names))\n")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True,
                          text=True, check=True)
    return done.stdout


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="session")
def student_kernel(tmp_path_factory) -> KernelSpecManager:
    """A kernelspec for a venv with only the wheel, its dependencies and ipykernel."""
    scratch = tmp_path_factory.mktemp("wheel")
    wheel = dist.build_wheel(scratch)
    constraints = scratch / "constraints.txt"
    constraints.write_text(_pins())
    with zipfile.ZipFile(wheel) as archive:
        declared = [line for line in archive.read(f"attention_course-{dist.version()}.dist-info/METADATA")
                    .decode().splitlines() if line.startswith("Requires-Dist:")]
    metadata = json.dumps([sys.version, constraints.read_text(), declared])
    key = hashlib.sha256(metadata.encode()).hexdigest()[:16]
    python = VENV / "bin" / "python"
    if not (VENV / f".key-{key}").exists():
        shutil.rmtree(VENV, ignore_errors=True)
        _run(sys.executable, "-m", "venv", str(VENV))
        _run(str(python), "-m", "pip", "install", "-q", "-c", str(constraints), str(wheel), "ipykernel")
        (VENV / f".key-{key}").touch()
    _run(str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel))
    _run(str(python), "-m", "ipykernel", "install", "--prefix", str(VENV), "--name", KERNEL)
    return KernelSpecManager(kernel_dirs=[str(VENV / "share" / "jupyter" / "kernels")])


def released(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "exercises" / name / f"{name}.ipynb", as_version=4)


def solution_code(name: str) -> dict[str, str]:
    notebook = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    return {nbgrader_metadata(c)["grade_id"]: SOLUTION_MARKERS.sub("", c.source)
            for c in notebook.cells if nbgrader_metadata(c).get("solution")}


def filled(name: str, code: dict[str, str]) -> nbformat.NotebookNode:
    notebook = released(name)
    for cell in notebook.cells:
        grade_id = nbgrader_metadata(cell).get("grade_id")
        if grade_id in code:
            cell.source = code[grade_id]
    return notebook


def execute(notebook, kernels: KernelSpecManager, tmp_path: Path, monkeypatch, first: str = ""):
    """Run every cell (errors kept as outputs) in a folder outside the repository."""
    if first:
        notebook.cells.insert(0, nbformat.v4.new_code_cell(first))
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the repository must not be importable
    monkeypatch.chdir(tmp_path)
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernels)
    NotebookClient(notebook, km=manager, timeout=300, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return notebook


def error_text(cell) -> str | None:
    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
    return ANSI.sub("", "\n".join(errors[0].traceback)) if errors else None


def graded_cells(notebook):
    return [c for c in notebook.cells if is_test_cell(c)]


@pytest.mark.parametrize("name", available_assignments())
def test_reference_solutions_pass_every_visible_test(name, student_kernel, tmp_path, monkeypatch):
    notebook = execute(filled(name, solution_code(name)), student_kernel, tmp_path, monkeypatch)
    failures = {nbgrader_metadata(c)["grade_id"]: error_text(c)
                for c in notebook.cells if error_text(c) is not None}
    assert failures == {}
    for cell in graded_cells(notebook):
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "✔" in printed, nbgrader_metadata(cell)["grade_id"]


@pytest.mark.parametrize("name", available_assignments())
def test_a_known_mistake_is_named_in_a_few_lines(name, student_kernel, tmp_path, monkeypatch):
    case_id, failing_test, phrase = MISTAKES[name]
    case = next(c for c in getattr(mistakes, name[:3].upper()) if c.student_id == case_id)
    assert phrase in case.failing[failing_test]
    notebook = execute(filled(name, {**solution_code(name), **case.code}), student_kernel,
                       tmp_path, monkeypatch)
    cell = next(c for c in notebook.cells if nbgrader_metadata(c).get("grade_id") == failing_test)
    text = error_text(cell)
    assert text is not None, f"{failing_test} passed with the mistake {case_id}"
    assert phrase in text
    assert len(text.strip().splitlines()) <= 10, text
    assert "attention_course/checks" not in text and "core.py" not in text and "Traceback" not in text


def test_ex1_passes_with_torch_unimportable(student_kernel, tmp_path, monkeypatch):
    name = "ex1_attention"
    notebook = execute(filled(name, solution_code(name)), student_kernel, tmp_path, monkeypatch,
                       first="import sys\nsys.modules['torch'] = None  # torch cannot be imported")
    assert {nbgrader_metadata(c).get("grade_id"): error_text(c) for c in notebook.cells
            if error_text(c) is not None} == {}
    assert len(graded_cells(notebook)) >= 5


def test_without_the_package_the_first_test_cell_says_how_to_install(student_kernel, tmp_path,
                                                                     monkeypatch):
    name = "ex1_attention"
    notebook = execute(filled(name, solution_code(name)), student_kernel, tmp_path, monkeypatch,
                       first="import sys\nsys.modules['attention_course'] = None  # not installed")
    setup = next(c for c in notebook.cells if nbgrader_metadata(c).get("grade_id") == "setup")
    printed = "".join(o.get("text", "") for o in setup.outputs if o.output_type == "stream")
    first_test = graded_cells(notebook)[0]
    shown = error_text(first_test)
    wheel = course_links.where().wheel_url
    for text in (printed, shown):
        assert text and "not installed" in text
        assert "Colab" in text and "JupyterHub" in text and "Laptop" in text and wheel in text
    assert len(shown.splitlines()) <= 10 and "Traceback" not in shown


CRASHING_FORWARD = ("        x = self.norm1(x + self.attend(x, mask))\n"
                    "        return self.norm2(x + self.linear2(x))  # linear1 forgotten\n")


def test_when_the_learners_code_raises_its_own_lines_are_shown(student_kernel, tmp_path, monkeypatch):
    """torch raises deep inside; the learner sees their line, the inputs, no library frame."""
    name = "ex3_transformer"
    notebook = execute(filled(name, {**solution_code(name), **mistakes._block(CRASHING_FORWARD)}),
                       student_kernel, tmp_path, monkeypatch)
    cell = next(c for c in notebook.cells
                if nbgrader_metadata(c).get("grade_id") == "test_encoder_block_post_ln")
    text = error_text(cell)
    assert text and "your EncoderBlock.forward raised RuntimeError" in text, text
    assert "called with: shape (2, 5, 8)" in text
    assert "in the cell starting `class EncoderBlock(nn.Module):`, line 21 (forward)" in text
    assert "return self.norm2(x + self.linear2(x))" in text
    assert "site-packages" not in text and "torch/" not in text and ".double" not in text
    assert len(text.splitlines()) <= 10
