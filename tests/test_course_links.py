"""Where the course lives is one setting; everything that says it is generated from it."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import nbformat

from tools import course_links
from tools.book import ROOT


def test_nothing_drifted_from_the_setting():
    """`make links` would change nothing (it also covers book/*.md and solutions/)."""
    stale = course_links.stale_files(ROOT)
    assert stale == [], f"run `make links`: {[str(p.relative_to(ROOT)) for p in stale]}"


def test_a_fork_changes_one_setting_and_every_place_follows(tmp_path):
    for name in ("pyproject.toml", "_config.yml", "conf.py", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    # book/exercises/ and the glossary are written from _config.yml by tools.site_pages
    # (make links runs it; tests/test_site_pages.py checks they follow _config.yml).
    shutil.copytree(ROOT / "book", tmp_path / "book",
                    ignore=shutil.ignore_patterns("*.ipynb", "_ext", "exercises", "glossary.md"))
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    (tmp_path / "attention_course").mkdir()
    text = (tmp_path / "pyproject.toml").read_text()
    text = text.replace('site_url = "https://self-attention-hands-on.github.io/course/"',
                        'site_url = "https://fork.example.org/attn"')
    text = text.replace('repository = "https://github.com/self-attention-hands-on/course"',
                        'repository = "https://github.com/someone/attn-fork"')
    text = text.replace('jupyterhub_url = ""', 'jupyterhub_url = "https://hub.example.edu"')
    (tmp_path / "pyproject.toml").write_text(text)
    assert course_links.stale_files(tmp_path, write=True)
    assert course_links.stale_files(tmp_path) == [], "a second run changes nothing"
    everything = "\n".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert "self-attention-hands-on" not in everything.replace('course_id = "self-attention-hands-on"', "")
    wheel = "https://fork.example.org/attn/_static/attention_course-"
    for md in (tmp_path / "book").glob("*.md"):
        if "kernelspec" in md.read_text():
            assert "https://fork.example.org/attn/'" in md.read_text(), md.name
    for notebook in (tmp_path / "solutions").glob("*/*.ipynb"):
        cells = nbformat.read(notebook, 4).cells
        assert "https://fork.example.org/attn/book/" in cells[0].source
        assert "../../book" not in cells[0].source
        assert wheel in cells[1].source
    readme = (tmp_path / "README.md").read_text()
    assert wheel in readme and "colab.research.google.com/github/someone/attn-fork/blob/main/" in readme
    assert "https://hub.example.edu/hub/user-redirect/git-pull?repo=" in readme
    config = (tmp_path / "_config.yml").read_text()
    assert "url: https://github.com/someone/attn-fork" in config
    assert 'jupyterhub_url: "https://hub.example.edu"' in config
    assert "baseurl: https://fork.example.org/attn/" in config
    assert "'repository_url': 'https://github.com/someone/attn-fork'" in (tmp_path / "conf.py").read_text()
    assert wheel in (tmp_path / "attention_course" / "_links.py").read_text()


def test_every_chapter_installs_the_wheel_the_site_serves():
    w = course_links.where()
    for md in sorted((ROOT / "book").glob("*.md")):
        text = md.read_text()
        if "kernelspec" in text:
            assert text.count("find_spec(\"attention_course\")") == 1, md.name
            assert "git+https" not in text
    assert w.wheel_url.endswith("/_static/" + w.wheel_name)


def test_released_notebooks_link_to_the_website():
    w = course_links.where()
    for notebook in sorted((ROOT / "exercises").glob("*/*.ipynb")):
        text = "\n".join(c.source for c in nbformat.read(notebook, 4).cells if c.cell_type == "markdown")
        assert "../../" not in text, notebook.name
        links = re.findall(r"\]\((https?://[^)]+)\)", text)
        assert any(link.startswith(w.site_url + "book/") for link in links), notebook.name


def test_make_links_check_passes_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "tools.course_links", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_site_serves_the_course_wheel_under_static(tmp_path, monkeypatch):
    """book/_ext/course_site.py builds the wheel and lists its folder in html_static_path."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import course_site
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    monkeypatch.setattr(course_site, "WHEEL_DIR", tmp_path / "wheel")

    class Config:
        html_static_path: list = []
        templates_path: list = []

    config = Config()
    course_site.add_static_path(None, config)
    assert str(tmp_path / "wheel") in config.html_static_path
    assert [p.name for p in (tmp_path / "wheel").iterdir()] == [course_links.where().wheel_name]


def test_the_pages_workflow_publishes_what_make_book_builds():
    """It cannot run here (GitHub's runners, the internet): at least it says the right things."""
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    commands = [step.get("run", "") for step in steps]
    assert "make test" in commands and "make book" in commands
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert any(s.get("uses", "").startswith("actions/deploy-pages")
               for s in workflow["jobs"]["deploy"]["steps"])
