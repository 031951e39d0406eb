# auditlens: everything a fresh machine needs is done by these targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_STORE := out/demo-store

.PHONY: demo test test-fast lint typecheck docs golden bench fuzz clean help native browser

help:
	@echo "make demo   - set up .venv, ingest data-samples/, detect, write the incident report (out/demo-report.html)"
	@echo "make test   - set up .venv, run lint, type checks, the whole test suite and notebooks"
	@echo "make test-fast - the suite without tests marked slow"
	@echo "make golden - rewrite tests/golden/ (stored values of every fixture) after a reviewed change"
	@echo "make bench  - run the benchmarks and rewrite docs/BENCHMARKS.md"
	@echo "make fuzz   - install atheris and fuzz every loader (RUNS=20000)"
	@echo "make native - compile the auditd hot path with mypyc (done by demo, test and bench)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebook,bench]'
	touch $(STAMP)

# The auditd reading and mapping modules compiled with mypyc into loaders/_native; they are used
# only while every module the build depends on (the compiled ones and what they import) still
# has its build-time hash (loaders/linux_auditd/native.py). The check is cheap, so it runs every
# time and rebuilds only a stale build.
native: $(STAMP)
	AUDITLENS_NATIVE=0 $(BIN)/python -m loaders.linux_auditd.native_build --if-stale

# the report's browser test drives Debian's chromium through Playwright (no browser download)
browser:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the report's browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; fi

demo: $(STAMP)
	@$(MAKE) --no-print-directory native || echo "auditlens: could not compile the auditd" \
	  "modules (needs gcc and the Python headers); the demo runs on the Python source, slower"
	# ingests data-samples/ into a fresh $(DEMO_STORE), runs the detectors, writes the report
	$(BIN)/auditlens demo --samples data-samples --out-dir out
	@echo
	@echo "Incident report: out/demo-report.html  (Markdown: out/demo-report.md, JSON: out/demo-report.json)"
	@echo "Demo store: $(DEMO_STORE)  (auditlens info --store $(DEMO_STORE); analysis.read_findings('$(DEMO_STORE)'))"

lint: $(STAMP)
	$(BIN)/ruff check loaders analysis tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected nothing: that is a failure too. The suite runs with the
# compiled auditd modules (what users run); the auditd tests then run again on the Python source.
test: lint typecheck native browser
	AUDITLENS_REQUIRE_NATIVE=1 AUDITLENS_REQUIRE_BROWSER=1 $(BIN)/python -m pytest --nbval-lax -p no:cacheprovider \
	  tests notebooks; \
	  s=$$?; if [ $$s -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$s
	AUDITLENS_REQUIRE_NATIVE=1 AUDITLENS_NATIVE=0 $(BIN)/python -m pytest -p no:cacheprovider \
	  -m "not slow" tests/test_linux_auditd.py tests/test_linux_auditd_fast.py tests/test_native.py

test-fast: $(STAMP) native
	$(BIN)/python -m pytest -m "not slow" --nbval-lax tests notebooks

docs: $(STAMP)
	$(BIN)/python -m loaders.schemadoc > docs/SCHEMA.md

# tests/test_golden.py compares every fixture's stored core values with tests/golden/; after a
# change of stored values that is intended, rewrite them and commit the diff with the change
golden: $(STAMP)
	$(BIN)/python -m tests.golden

fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	AUDITLENS_FUZZ=1 AUDITLENS_FUZZ_RUNS=$${RUNS:-20000} $(BIN)/python -m pytest -q tests/test_fuzz.py

# ausearch (Debian `auditd`) and msticpy (own venv) are baselines of the linux_auditd suite
bench: $(STAMP) native
	bash benchmarks/setup_baselines.sh
	$(BIN)/python benchmarks/run.py --repeat 3

clean:
	rm -rf out auditlens-store benchmarks/work loaders/_native .pytest_cache .mypy_cache .ruff_cache
