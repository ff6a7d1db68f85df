# The two commands: `make lab` and `make test` (see README.md).
.PHONY: setup test lab bench

setup:
	@bash scripts/setup.sh

test: setup
	@bash scripts/test.sh

lab: setup
ifeq ($(HEADLESS),1)
	@.venv/bin/python scripts/run_notebook.py notebooks/quickstart.ipynb
else
	@.venv/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) \
		$(if $(DISPLAY),,--no-browser) quickstart.ipynb
endif

bench: setup
	@.venv/bin/python bench/lifecycle.py
