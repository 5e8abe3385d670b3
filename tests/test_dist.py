"""`make dist`: the wheel and sdist hold the course package and nothing the grader keeps private."""
from __future__ import annotations

import tarfile
import zipfile

import pytest

from tools import dist

PRIVATE = ("autograder/", "solutions/", "tests/", "exercises/", "book/", "tools/")
SECRET_TEXT = ("BEGIN HIDDEN TESTS", "BEGIN SOLUTION", "### BEGIN")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    return dist.build_wheel(out), dist.build_sdist(out)


def _names_and_texts(archive):
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return {n: z.read(n).decode("utf-8", "replace") for n in z.namelist()}
    with tarfile.open(archive) as t:
        return {m.name.split("/", 1)[1]: t.extractfile(m).read().decode("utf-8", "replace")
                for m in t.getmembers() if m.isfile()}


def test_wheel_is_named_as_the_site_serves_it(built):
    wheel, sdist = built
    assert wheel.name == dist.wheel_name()
    assert sdist.name == f"attention_course-{dist.version()}.tar.gz"


@pytest.mark.parametrize("which", [0, 1], ids=["wheel", "sdist"])
def test_archive_holds_the_package_and_the_checks_but_nothing_private(built, which):
    files = _names_and_texts(built[which])
    names = list(files)
    for module in ("attention_course/checks/ex1.py", "attention_course/checks/ex4.py",
                   "attention_course/_links.py", "attention_course_learner/remote.py"):
        assert module in names
    assert not [n for n in names if n.startswith(PRIVATE)]
    assert not [n for n in names if n.endswith(".ipynb")]
    for name, text in files.items():
        if name.endswith(".py"):
            assert not any(secret in text for secret in SECRET_TEXT), name


def test_wheel_declares_its_dependencies(built):
    metadata = _names_and_texts(built[0])[f"attention_course-{dist.version()}.dist-info/METADATA"]
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    assert any(r.startswith("torch") for r in requires) and any(r.startswith("numpy") for r in requires)
    assert "Name: attention-course" in metadata
