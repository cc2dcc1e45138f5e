# musefusion: `make demo` runs the main job on the synthetic corpus, `make test` runs the tests.
# Both create .venv and install the pinned dependencies (constraints.txt) when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo

.PHONY: demo test test-fast lint docs venv sysdeps clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@echo "make: installing musefusion and its pinned dependencies into $(VENV) (first use only: about 2.5 GB, several minutes)"
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --progress-bar off -c constraints.txt -e '.[all,dev]'
	# MTCNN weights for vggface: only facenet-pytorch's data files are used; --no-deps because its metadata pins
	# torch<2.3/numpy<2 (so it cannot sit in an extra), and the package itself is never imported.
	$(BIN)/pip install -q --no-deps -c constraints.txt facenet-pytorch
	touch $@

venv: $(BIN)/.installed

# Debian packages the extraction tests use (espeak-ng speech, PostgreSQL for the sweep test); skipped when present.
sysdeps:
	@missing=""; command -v espeak-ng >/dev/null 2>&1 || missing="espeak-ng"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then echo "make: installing Debian packages used by a few tests:$$missing (apt-get; without them those tests skip)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "warning: could not install$$missing (their tests will skip)"; fi

demo: venv
	$(BIN)/musefusion demo --out $(DEMO_DIR)

# The coverage floor is the level the suite reached when it was set (93.6 % of lines on 2026-12-01).
test: venv sysdeps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=10 --doctest-modules tests src/musefusion \
	    --cov=musefusion --cov-report= --cov-fail-under=93

# Everything but the tests marked slow (whole reproductions, subprocess runs): about half the time.
test-fast: venv sysdeps
	$(BIN)/python -m pytest -q -n 2 -m "not slow" tests

# The documentation site (MkDocs, strict: a broken link, a missing page or a bad docstring reference fails it).
docs: venv
	$(BIN)/mkdocs build --strict --site-dir site

lint: venv
	$(BIN)/ruff check --no-cache src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_DIR) site
