# Self-Attention, Hands-On — every command a newcomer needs.
#   make book    install into .venv, build the website with every chapter executed
#   make test    install what the tests need, run the whole test suite
#   make serve   serve the built site on http://127.0.0.1:8000 (loopback only)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SITE := _build/html
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install book serve test test-fast browser-deps postgres-deps fonts-deps vendor notebooks links dist \
	student site-pages translations claims bench-book bench-site bench-grade bench-scale clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --progress-bar off -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	$(PY) -m autograder.environment
	touch $(STAMP)

vendor: install
	$(PY) -m tools.vendor_assets

notebooks: install
	$(PY) -m tools.pair_notebooks

# Where the course lives is one setting ([tool.attention_course] in pyproject.toml): this
# writes it into launch buttons, install cells, "Read first" links, README; then the copies.
links: install
	$(PY) -m tools.course_links
	$(PY) -m tools.pair_notebooks
	$(PY) -m autograder release
	$(PY) -m tools.site_pages

# The course package (import name attention_course, distribution attention-course) as a
# wheel and an sdist in dist/: the chapters' code and the exercises' checks, no solutions,
# no grader, no tests. The website serves the same wheel under _static/.
dist: install
	$(PY) -m tools.dist --out dist

# Students: the course package and JupyterLab only (no Node.js, no book build). Without a
# GPU, the small CPU build of torch: `make student TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
TORCH_INDEX ?=
student:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PIP) install --quiet torch --index-url $(TORCH_INDEX))
	$(PIP) install --quiet -e . "jupyterlab>=4.2,<5"
	@echo "Now: $(VENV)/bin/jupyter lab exercises/"

# Exercise pages and the glossary are generated from exercises/ and the chapters.
site-pages: install
	$(PY) -m tools.site_pages

# After an English edit: update locales/zh_CN from the book (after `make book`) and list
# what needs translating. tests/test_translations.py fails until it is translated.
translations: install
	$(PY) -m tools.translations

book: install vendor fonts-deps
	$(PY) -m tools.book

serve:
	@echo "Serving $(SITE) on http://127.0.0.1:$(PORT)/ (Ctrl-C to stop)"
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory $(SITE)

# The browser tests drive Debian's chromium (Playwright's own browser download needs the internet).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Chinese words in figures need a CJK font (attention_course/language.py): Debian's Noto CJK.
fonts-deps:
	@{ command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh family | grep -q .; } || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fontconfig fonts-noto-cjk >/dev/null; }

# The gradebook tests start a throw-away PostgreSQL server (initdb + pg_ctl): Debian's postgresql.
postgres-deps:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

test: install browser-deps postgres-deps fonts-deps vendor
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

# Every chapter under course seeds 0-2 x every CPU dispatch level this CPU has.
claims: install
	$(PY) -m tools.claims --seeds 0,1,2 --dispatch default,avx2,avx512 --jobs 2

bench-book: install vendor
	$(PY) -m tools.bench_book

# Page weight vs the 2 MB / 5 MB budgets and first contentful paint, every page of the built site.
bench-site: install browser-deps
	$(PY) -m tools.bench_site

# --- grading (owned by the autograder) ---
.PHONY: test-grader
bench-grade: install
	$(PY) -m autograder.bench

# --jobs 1/2 and a LocalCluster of 1 and 2 workers on 200 mixed ex1/ex2 submissions,
# marginal cost (200 vs 20), rerun time, gradebook write rates (SQLite, PostgreSQL).
bench-scale: install postgres-deps
	$(PY) -m autograder.bench_scale

# The grader's and the assignments' tests only; run as root, the sandbox and adversarial
# suites run again as `nobody` (tests/test_grader_unprivileged.py).
test-grader: install postgres-deps
	$(PY) -m pytest -q tests/test_grader_*.py tests/test_assignments_*.py
# --- end grading ---

clean:
	rm -rf _build dist
