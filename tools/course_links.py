"""Write every place that says where the course lives from ONE setting (`make links`).

The setting is ``[tool.attention_course]`` in pyproject.toml: the website's URL, the
repository, its branch and (optionally) a JupyterHub. A fork edits those lines and
runs ``make links``; this rewrites

* the launch buttons and repository button (``_config.yml``, ``conf.py``),
* the hidden install cell at the top of every chapter (``book/*.md``; then
  ``make notebooks`` rewrites the .ipynb copies),
* the "Read first" links and the setup cell of every exercise (``solutions/``;
  ``python -m autograder release`` then regenerates ``exercises/``),
* the README's "Start here" block and the project URLs,
* ``attention_course/_links.py``, which the package's own messages quote.

``--check`` writes nothing and exits 1 when any of them is stale
(tests/test_course_links.py runs it).
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class Where:
    site_url: str        # ends with "/"
    repository: str      # https://github.com/<owner>/<name>
    branch: str
    jupyterhub_url: str  # "" when the course has no hub
    version: str

    @property
    def wheel_name(self) -> str:
        return f"attention_course-{self.version}-py3-none-any.whl"

    @property
    def wheel_url(self) -> str:
        return f"{self.site_url}_static/{self.wheel_name}"

    @property
    def github_path(self) -> str:
        """<owner>/<name> of a GitHub repository ('' for another host)."""
        match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?/?", self.repository)
        return match.group(1) if match else ""

    def page(self, docname: str) -> str:
        return f"{self.site_url}{docname}.html"

    def colab(self, path: str) -> str:
        return (f"https://colab.research.google.com/github/{self.github_path}/blob/"
                f"{self.branch}/{path}")

    def nbgitpuller(self, hub: str) -> str:
        name = self.repository.rstrip("/").rsplit("/", 1)[-1]
        return (f"{hub.rstrip('/')}/hub/user-redirect/git-pull?repo={quote(self.repository, safe='')}"
                f"&branch={self.branch}&urlpath=lab%2Ftree%2F{name}%2Fexercises")


def where(root: Path = ROOT) -> Where:
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    setting = project["tool"]["attention_course"]
    site = setting["site_url"].rstrip("/") + "/"
    return Where(site, setting["repository"].rstrip("/"), setting.get("branch", "main"),
                 setting.get("jupyterhub_url", "").rstrip("/"), project["project"]["version"])


# ---------------------------------------------------------------- the generated texts

def install_lines(w: Where) -> list[str]:
    """How to install the course package, per place; quoted by every missing-package message."""
    return [
        f"  Colab:       run  !pip install -q {w.wheel_url}",
        f"  JupyterHub:  run  %pip install -q {w.wheel_url}",
        f"  Laptop:      pip install torch --index-url {CPU_INDEX}",
        f"               pip install {w.wheel_url}",
        "  then restart the kernel (Colab: Runtime > Restart session) and run this cell again.",
    ]


def links_module(w: Where) -> str:
    install = "\n".join(install_lines(w))
    return f'''"""Where the course lives. Written by `make links` from [tool.attention_course] in
pyproject.toml (tools/course_links.py): edit the setting there, not this file."""

SITE_URL = {w.site_url!r}
REPOSITORY = {w.repository!r}
WHEEL_URL = {w.wheel_url!r}
CPU_TORCH_INDEX = {CPU_INDEX!r}

INSTALL = """\\
{install}"""
'''


def chapter_install_cell(w: Where) -> str:
    head, tail = w.wheel_url[:len(w.site_url)], w.wheel_url[len(w.site_url):]
    return (
        "```{code-cell} ipython3\n"
        ":tags: [remove-cell]\n"
        "\n"
        "# On Colab the course package is not installed yet: this installs it from the course\n"
        "# website (written by `make links`). Everywhere else it does nothing.\n"
        "import importlib.util, subprocess, sys\n"
        "\n"
        f"WHEEL = ({head!r}\n"
        f"         {tail!r})\n"
        "if importlib.util.find_spec(\"attention_course\") is None:\n"
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", WHEEL], check=True)\n"
        "```\n"
    )


CHAPTER_INSTALL_CELL = re.compile(
    r"```\{code-cell\} ipython3\n:tags: \[remove-cell\]\n\n# On Colab(?:(?!\n```\n).)*?"
    r"find_spec\(\"attention_course\"\).*?\n```\n", re.S)


def exercise_setup_cell(w: Where) -> str:
    """The first code cell of every exercise: works without the course package."""
    install = "\n".join(install_lines(w))
    return (
        "# Setup: run this cell first. It checks that the course package is installed\n"
        "# (written by `make links`).\n"
        "try:\n"
        "    import attention_course.checks  # noqa: F401\n"
        "except ModuleNotFoundError as missing:\n"
        "    if not (missing.name or \"\").startswith(\"attention_course\"):\n"
        "        raise\n"
        "    COURSE_MISSING = (\"The course package `attention_course` is not installed. \"\n"
        "                      \"Install it:\\n\" + \"\"\"\\\n"
        f"{install}\"\"\")\n"
        "    print(COURSE_MISSING)\n"
        "    # Each test cell then says the same (as its error), not a traceback.\n"
        "    get_ipython().set_custom_exc((ModuleNotFoundError,), lambda shell, etype, value, *_, **__: \\\n"
        "        shell._showtraceback(etype, value, COURSE_MISSING.splitlines()))\n"
    )


# A chapter link: relative ("../../book/01_qkv.md") or already on some website.
READ_FIRST = re.compile(r"\]\((?:\.\./\.\./|https?://[^)\s]*?/)book/(\w+)\.(?:md|html)\)")


def read_first_links(text: str, w: Where) -> str:
    """Chapter links -> the website's pages: a notebook uploaded alone keeps working links."""
    return READ_FIRST.sub(lambda m: f"]({w.page('book/' + m.group(1))})", text)


def readme_block(w: Where) -> str:
    ex1 = "exercises/ex1_attention/ex1_attention.ipynb"
    colab = w.colab(ex1) if w.github_path else "(Colab opens notebooks from GitHub only)"
    hub = (f"[nbgitpuller link]({w.nbgitpuller(w.jupyterhub_url)})" if w.jupyterhub_url else
           "an nbgitpuller link `<hub>/hub/user-redirect/git-pull?repo=<this repository>"
           "&urlpath=lab/tree/<name>/exercises` (set `jupyterhub_url` in pyproject.toml to "
           "print it here)")
    return f"""<!-- start-here: written by `make links` from [tool.attention_course] in pyproject.toml -->
| you are | start here |
|---|---|
| **a reader** | the website, {w.site_url} (every chapter is an executed notebook; its rocket button opens it in Colab) |
| **a student** | install the course package (below), then open the notebooks in [`exercises/`](exercises/) |
| **an instructor** | the grading workflow: [For instructors](#for-instructors) and [autograder/README.md](autograder/README.md) |

**Students** need no Node.js and no book build, only the course package
(distribution `attention-course`, import name `attention_course`):

- **Colab:** open an exercise ([ex1 in Colab]({colab})) and run
  `!pip install -q {w.wheel_url}` in a new first cell.
- **JupyterHub:** `%pip install -q {w.wheel_url}` in a notebook; an instructor can hand out
  {hub}.
- **Laptop** (Python ≥ 3.10, no GPU): the small CPU build of torch first, from PyTorch's CPU
  wheel index (plain `pip install torch` on Linux brings a multi-GB CUDA build):

  ```bash
  python -m venv .venv && . .venv/bin/activate
  pip install torch --index-url {CPU_INDEX}
  pip install {w.wheel_url} jupyterlab
  jupyter lab        # open an exercise notebook
  ```

  With an NVIDIA GPU, install a CUDA build instead (`pip install torch`, or the
  `--index-url` for your CUDA version from https://pytorch.org/get-started/locally/).
  From a clone of this repository, `make student TORCH_INDEX={CPU_INDEX}` does the same
  into `.venv` (leave `TORCH_INDEX` out for a CUDA build).
<!-- end start-here -->
"""


README_BLOCK = re.compile(r"<!-- start-here:.*?<!-- end start-here -->\n", re.S)


# ---------------------------------------------------------------- rewriting files

def _sub_one(pattern: str, replacement: str, text: str, what: str, flags=re.M) -> str:
    new, count = re.subn(pattern, lambda _m: replacement, text, count=1, flags=flags)
    if count != 1:
        raise SystemExit(f"course_links: cannot find {what}")
    return new


def config_yml(text: str, w: Where) -> str:
    text = _sub_one(r"^repository:\n  url: .*\n  path_to_book: .*\n  branch: .*$",
                    f"repository:\n  url: {w.repository}\n  path_to_book: \"\"\n  branch: {w.branch}",
                    text, "repository: in _config.yml")
    text = _sub_one(r"^  baseurl: .*$", f"  baseurl: {w.site_url}", text, "html.baseurl in _config.yml")
    return _sub_one(r"^  jupyterhub_url: .*$", f"  jupyterhub_url: \"{w.jupyterhub_url}\"", text,
                    "launch_buttons.jupyterhub_url in _config.yml")


def conf_py(text: str, w: Where) -> str:
    for key, value in (("repository_url", w.repository), ("repository_branch", w.branch),
                       ("jupyterhub_url", w.jupyterhub_url)):
        text = _sub_one(rf"'{key}': '[^']*'", f"'{key}': {value!r}", text, f"{key} in conf.py")
    return _sub_one(r"^html_baseurl = .*$", f"html_baseurl = {w.site_url!r}", text, "html_baseurl")


def pyproject(text: str, w: Where) -> str:
    text = _sub_one(r'^Homepage = ".*"$', f'Homepage = "{w.site_url}"', text, "Homepage")
    return _sub_one(r'^Repository = ".*"$', f'Repository = "{w.repository}"', text, "Repository")


def chapter(text: str, w: Where) -> str:
    new, count = CHAPTER_INSTALL_CELL.subn(lambda _m: chapter_install_cell(w), text, count=1)
    return new if count else text  # a page that is not a notebook has no install cell


def solution_notebook(text: str, w: Where) -> str:
    notebook = nbformat.reads(text, as_version=4)
    intro = notebook.cells[0]
    intro.source = read_first_links(intro.source, w)
    setup = next((c for c in notebook.cells if c.cell_type == "code"
                  and c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup"), None)
    if setup is None:
        setup = nbformat.v4.new_code_cell(metadata={"nbgrader": {
            "grade": False, "grade_id": "setup", "locked": True, "schema_version": 3,
            "solution": False}, "deletable": False, "editable": False})
        setup.pop("id", None)
        notebook.cells.insert(1, setup)
    setup.source = exercise_setup_cell(w)
    return nbformat.writes(notebook) + "\n"


def targets(root: Path, w: Where) -> dict[Path, callable]:
    found = {
        root / "_config.yml": config_yml,
        root / "conf.py": conf_py,
        root / "pyproject.toml": pyproject,
        root / "README.md": lambda t, w: _sub_one(README_BLOCK.pattern, readme_block(w), t,
                                                 "the start-here block in README.md", re.S),
        root / "attention_course" / "_links.py": lambda _t, w: links_module(w),
    }
    for md in sorted((root / "book").glob("*.md")):
        found[md] = chapter
    for notebook in sorted((root / "solutions").glob("*/*.ipynb")):
        found[notebook] = solution_notebook
    return found


def stale_files(root: Path = ROOT, write: bool = False) -> list[Path]:
    w = where(root)
    stale = []
    for path, rewrite in targets(root, w).items():
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        new = rewrite(old, w)
        if new != old:
            stale.append(path)
            if write:
                path.write_text(new, encoding="utf-8")
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = stale_files(write=not args.check)
    for path in stale:
        print(("stale: " if args.check else "wrote ") + str(path.relative_to(ROOT)))
    if args.check and stale:
        print("run `make links` (then `make notebooks` and `python -m autograder release`)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
