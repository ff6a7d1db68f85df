# The two commands (README.md):
#   make lab     set up, then open notebooks/01-quickstart.ipynb in JupyterLab
#                (HEADLESS=1: run it end to end with a kernel and print its outputs instead)
#   make test    set up, then run the whole test suite (ARGS="..." passes pytest arguments)
# Both start with scripts/setup.sh, which installs what is missing and is quick when nothing is.

NOTEBOOK := notebooks/01-quickstart.ipynb
# jupyter lab flags: root needs --allow-root; with no display there is no browser to open (the
# printed URL, default_url below, opens the quickstart).
LAB_FLAGS = $(if $(filter 0,$(shell id -u)),--allow-root) \
	$(if $(DISPLAY)$(WAYLAND_DISPLAY),,--no-browser)

# The console widget's front-end: js/ (xterm.js and esbuild pinned in package-lock.json) bundled
# into one ESM file + CSS in workbench/widgets/static/. The bundle is committed (a wheel needs no
# node); bundle.inputs records the hashes of what it was built from, and scripts/setup.sh runs
# `make bundle` when they no longer match (or the bundle is missing).
STATIC := workbench/widgets/static
BUNDLE_INPUTS := js/package.json js/package-lock.json js/console.js js/console.css

SCREENSHOTS := console inspect-view container-table stats-plot lifecycle-paused

.PHONY: help setup test lab bench bundle screenshots

help:
	@echo "make lab              set up and open $(NOTEBOOK) in JupyterLab"
	@echo "HEADLESS=1 make lab   set up and run $(NOTEBOOK) without a browser"
	@echo "make test             set up and run the test suite (ARGS=\"-k name\" for a subset)"
	@echo "make bench            set up and compare Workbench with Podman"
	@echo "make bundle           rebuild the console widget's xterm.js bundle (needs node and npm)"
	@echo "make screenshots      copy the widget screenshots of the last browser tests into docs/"

setup:
	@bash scripts/setup.sh

test: setup
	@bash scripts/test.sh $(ARGS)

lab: setup
ifeq ($(HEADLESS),1)
	@.venv/bin/python scripts/run_notebook.py $(NOTEBOOK)
else
	@.venv/bin/python -m jupyterlab --ServerApp.root_dir=notebooks \
		--LabApp.default_url=/lab/tree/$(notdir $(NOTEBOOK)) $(LAB_FLAGS)
endif

bench: setup
	@.venv/bin/python bench/lifecycle.py

bundle:
	cd js && npm ci --no-audit --no-fund --loglevel=error
	cd js && npm run --silent build
	{ echo "Third-party code in console.js and console.css (bundled from npm by esbuild):"; \
	  for pkg in xterm addon-fit; do echo; echo "== @xterm/$$pkg $$(node -p "require('./js/node_modules/@xterm/$$pkg/package.json').version")"; \
	  cat js/node_modules/@xterm/$$pkg/LICENSE; done; } > $(STATIC)/THIRD_PARTY_LICENSES
	sha256sum $(BUNDLE_INPUTS) > $(STATIC)/bundle.inputs

# The README's widget pictures: what the browser tests (tests/browser) saved on their last run.
screenshots:
	@for name in $(SCREENSHOTS); do \
	  test -s tests/browser/artifacts/$$name.png || { echo "tests/browser/artifacts/$$name.png is missing: run make test first"; exit 1; }; \
	done
	cp $(foreach name,$(SCREENSHOTS),tests/browser/artifacts/$(name).png) docs/screenshots/
