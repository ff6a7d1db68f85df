# The two commands (README.md):
#   make lab     set up, then open notebooks/quickstart.ipynb in JupyterLab
#                (HEADLESS=1: run it end to end with a kernel and print its outputs instead)
#   make test    set up, then run the whole test suite (ARGS="..." passes pytest arguments)
# Both start with scripts/setup.sh, which installs what is missing and is quick when nothing is.

NOTEBOOK := notebooks/quickstart.ipynb
# jupyter lab flags: root needs --allow-root; with no display there is no browser to open (the
# printed URL, default_url below, opens the quickstart).
LAB_FLAGS = $(if $(filter 0,$(shell id -u)),--allow-root) \
	$(if $(DISPLAY)$(WAYLAND_DISPLAY),,--no-browser)

.PHONY: help setup test lab bench

help:
	@echo "make lab              set up and open $(NOTEBOOK) in JupyterLab"
	@echo "HEADLESS=1 make lab   set up and run $(NOTEBOOK) without a browser"
	@echo "make test             set up and run the test suite (ARGS=\"-k name\" for a subset)"
	@echo "make bench            set up and compare Workbench with Podman"

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
