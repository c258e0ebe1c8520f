# The entry points people type. `make run` and `make test` work on a fresh Debian 12
# machine: they install what is missing (apt packages, a .venv with the package built
# from source), build, and then serve or test.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := build
CPP_BUILD := $(BUILD)/cpp
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_SECONDS ?= 300

# Debian packages the build, the tests and the benchmarks need (chromium: the browser
# WebSocket interop test).
APT_PACKAGES := g++ pkg-config liburing-dev zlib1g-dev libssl-dev libboost-test-dev clang libclang-rt-14-dev curl wrk valgrind chromium
BENCH_APT_PACKAGES := nginx-light

CMAKE := $(VENV)/bin/cmake
CPP_SOURCES := $(shell find src asgi load tests/cpp tests/fuzz -name '*.cc' -o -name '*.h' 2>/dev/null) CMakeLists.txt

.PHONY: all apt-deps deps run run-responder test test-cpp test-python test-python-other build-cpp install fuzz fuzz-smoke bench-core bench \
        bench-ws bench-workers bench-gunicorn test-gunicorn-oldest perf-gate callgrind-gate callgrind-budget callgrind-asgi \
        clean \
        test-asan test-asan-cpp test-asan-python test-tsan soak

all: install build-cpp

# ---- set-up ---------------------------------------------------------------------------

# Checks with dpkg first, so it costs nothing once everything is there.
apt-deps:
	@.ci/apt-install $(APT_PACKAGES)

deps: apt-deps $(VENV)/.deps

$(VENV)/.deps: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.22" ninja
	@touch $@

# The package, built from source into the venv (incremental: see build-dir in pyproject),
# with the test dependencies (pytest, httpx, FastAPI, uvicorn to compare with) and the
# benchmark peers (granian, locust, matplotlib: the harness is tested too).
install: deps
	$(PY) -m pip install --quiet --no-build-isolation ".[test,bench]"

# ---- C++ ------------------------------------------------------------------------------

$(CPP_BUILD)/build.ninja: CMakeLists.txt | deps
	$(CMAKE) -S . -B $(CPP_BUILD) -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) \
	    -DDBRIDGE_BUILD_EXTENSION=OFF -DDBRIDGE_BUILD_TESTS=ON -DDBRIDGE_BUILD_TOOLS=ON

build-cpp: $(CPP_BUILD)/build.ninja
	$(CMAKE) --build $(CPP_BUILD)

test-cpp: build-cpp
	$(CPP_BUILD)/dbridge_unit_tests --report_level=short --color_output=no
	$(CPP_BUILD)/dbridge_reactor_tests --report_level=short --color_output=no

# ---- Python ---------------------------------------------------------------------------

test-python: install build-cpp
	DBRIDGE_RESPONDER=$(abspath $(CPP_BUILD)/dbridge-responder) $(PY) -m pytest tests/python

# The same suite on the newest Python here (CI: 3.13, from the image's pyenv), in a venv of
# its own: 3.12+ runs the request task eagerly, a code path 3.11 never takes.
OTHER_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
test-python-other:
	@test -n "$(OTHER_PYTHON)" || { echo "no Python 3.13 found: set OTHER_PYTHON=/path/to/python3.x"; exit 1; }
	$(MAKE) test-python PYTHON=$(OTHER_PYTHON) VENV=.venv-$(notdir $(OTHER_PYTHON))

# ---- the two commands -----------------------------------------------------------------

test: test-cpp test-python

# Serves the example FastAPI app on 127.0.0.1:8000.
run: install
	$(VENV)/bin/dbridge-asgi main:app --app-dir examples/hello --host 127.0.0.1 --port 8000

# The C-only responder on the same port: the floor the benchmarks quote.
run-responder: build-cpp
	$(CPP_BUILD)/dbridge-responder --host 127.0.0.1 --port 8000

# ---- sanitizers -------------------------------------------------------------------------
# `make test-asan`: the C++ units and reactor tests, then the whole pytest suite, with
# every line of our C++ built with -fsanitize=address,undefined (DBRIDGE_SANITIZE; UBSan
# findings abort: -fno-sanitize-recover). The recipe for the Python half:
#  - the package is built with DBRIDGE_SANITIZE=ON into its own venv, $(ASAN_VENV), which
#    takes the test dependencies from .venv through a .pth file (nothing is downloaded
#    twice) and shadows .venv's dbridge_asgi with the sanitized one;
#  - python is not built with ASan, so the runtime is preloaded: LD_PRELOAD=$$(gcc
#    -print-file-name=libasan.so); every Python process pytest starts (our servers,
#    uvicorn) inherits it; libstdc++ is preloaded with it, or ASan's __cxa_throw
#    interceptor finds no real function and aborts at the first C++ exception; curl
#    hangs with the preload, so a `curl` shim first on PATH drops it;
#  - the C-only responder the core tests use is the sanitized build's;
#  - detect_leaks=0: CPython does not free everything at exit, so LeakSanitizer would
#    report the interpreter, not us;
#  - quarantine_size_mb=4 (default 256): freed memory held back to catch use-after-free
#    shows as RSS, and the tests that bound a server's memory would measure ASan;
#  - reports go to files under $(ASAN_REPORTS) (log_path), so a finding in a server
#    process is not lost in a log nobody reads: any file there fails the target.
ASAN_BUILD := $(BUILD)/asan
ASAN_VENV := $(BUILD)/asan-venv
ASAN_REPORTS := $(abspath $(BUILD))/asan-reports
ASAN_ENV = ASAN_OPTIONS=detect_leaks=$(ASAN_LEAKS):abort_on_error=1:quarantine_size_mb=4:log_path=$(ASAN_REPORTS)/report \
    UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_REPORTS)/report
TSAN_BUILD := $(BUILD)/tsan
SITE_PACKAGES = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

$(ASAN_BUILD)/build.ninja: CMakeLists.txt | deps
	$(CMAKE) -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDBRIDGE_BUILD_EXTENSION=OFF -DDBRIDGE_BUILD_TESTS=ON \
	    -DDBRIDGE_BUILD_TOOLS=ON -DDBRIDGE_SANITIZE=ON

# The C++ tests are ours alone: LeakSanitizer stays on for them.
test-asan-cpp: ASAN_LEAKS := 1
test-asan-python: ASAN_LEAKS := 0
test-asan-cpp: $(ASAN_BUILD)/build.ninja
	$(CMAKE) --build $(ASAN_BUILD)
	@rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS)
	$(ASAN_ENV) $(ASAN_BUILD)/dbridge_unit_tests --report_level=short --color_output=no
	$(ASAN_ENV) $(ASAN_BUILD)/dbridge_reactor_tests --report_level=short --color_output=no
	@! ls $(ASAN_REPORTS)/report* >/dev/null 2>&1 || { cat $(ASAN_REPORTS)/report*; exit 1; }

test-asan-python: install $(ASAN_BUILD)/build.ninja
	$(CMAKE) --build $(ASAN_BUILD) --target dbridge-responder
	@test -x $(ASAN_VENV)/bin/python || $(PYTHON) -m venv $(ASAN_VENV)
	mkdir -p $(ASAN_VENV)/shims && printf '#!/bin/sh\nexec env -u LD_PRELOAD %s "$$@"\n' "$$(command -v curl)" \
	    > $(ASAN_VENV)/shims/curl && chmod +x $(ASAN_VENV)/shims/curl
	# Gunicorn comes from .venv (the .pth below); its arbiter runs on this venv's Python so
	# the workers load the sanitized extension.
	printf '#!%s\nimport sys\nfrom gunicorn.app.wsgiapp import run\nsys.exit(run())\n' \
	    "$(abspath $(ASAN_VENV))/bin/python" > $(ASAN_VENV)/bin/gunicorn && chmod +x $(ASAN_VENV)/bin/gunicorn
	echo "$(abspath $(SITE_PACKAGES))" > $$($(ASAN_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/dbridge-test-deps.pth
	PATH=$(abspath $(VENV))/bin:$$PATH $(ASAN_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation \
	    --config-settings=build-dir=$(BUILD)/asan-wheel --config-settings=cmake.build-type=RelWithDebInfo \
	    --config-settings=cmake.define.DBRIDGE_SANITIZE=ON .
	@rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS)
	$(ASAN_ENV) DBRIDGE_RESPONDER=$(abspath $(ASAN_BUILD)/dbridge-responder) PATH=$(abspath $(ASAN_VENV))/shims:$$PATH \
	    LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" $(ASAN_VENV)/bin/python -m pytest tests/python $(PYTEST_ARGS)
	@! ls $(ASAN_REPORTS)/report* >/dev/null 2>&1 || { cat $(ASAN_REPORTS)/report*; exit 1; }

test-asan: test-asan-cpp test-asan-python

# The reactor tests run the server on a thread of its own: ThreadSanitizer watches the
# hand-over between it and the test's client thread.
test-tsan: | deps
	$(CMAKE) -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDBRIDGE_BUILD_EXTENSION=OFF -DDBRIDGE_BUILD_TESTS=ON \
	    -DCMAKE_CXX_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread
	$(CMAKE) --build $(TSAN_BUILD) --target dbridge_reactor_tests
	TSAN_OPTIONS=halt_on_error=1 $(TSAN_BUILD)/dbridge_reactor_tests --report_level=short --color_output=no

# ---- fuzzing (clang, libFuzzer, ASan/UBSan) -------------------------------------------

$(FUZZ_BUILD)/build.ninja: CMakeLists.txt | deps
	CXX=clang++ $(CMAKE) -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV)/bin/ninja) \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDBRIDGE_BUILD_EXTENSION=OFF -DDBRIDGE_BUILD_FUZZ=ON

# `make fuzz` runs each target for FUZZ_SECONDS (default 5 minutes); new inputs go to a
# scratch corpus so the seeds in the repo stay hand-written.
FUZZ_TARGETS := request_parser chunked_body ws_frame scope_fields

fuzz: $(FUZZ_BUILD)/build.ninja
	$(CMAKE) --build $(FUZZ_BUILD) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	mkdir -p $(FUZZ_BUILD)/artifacts
	set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/artifacts/ \
	        $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t; \
	done

# 30 s per target (four targets).
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=30

# ---- benchmarks -----------------------------------------------------------------------

bench-core: build-cpp
	@.ci/apt-install $(BENCH_APT_PACKAGES)
	$(PY) load/bench_core.py --responder $(CPP_BUILD)/dbridge-responder

# The ASGI scenarios side by side (dbridge-asgi, uvicorn, granian), the C-only responder
# as the floor where it answers the same request. BENCH_ARGS adds harness options.
BENCH_SCENARIOS ?= raw,pipelined16,fastapi_get,fastapi_post
bench: install build-cpp
	$(VENV)/bin/dbridge-asgi bench --scenario $(BENCH_SCENARIOS) \
	    --server 'floor@raw,pipelined16,no_keepalive=$(abspath $(CPP_BUILD)/dbridge-responder) --host {host} --port {port}' \
	    --json $(BUILD)/bench.json --markdown $(BUILD)/bench.md $(BENCH_ARGS)

# Issue 6's WebSocket bar: 1 KB echo over 64 connections (dbridge-wsload), against uvicorn
# --ws websockets-sansio and granian; the raw ASGI echo shows the server's own share.
bench-ws: install
	$(VENV)/bin/dbridge-asgi bench --scenario ws_echo,ws_echo_raw \
	    --gate "dbridge-asgi/uvicorn>=2@ws_echo" --gate "dbridge-asgi/granian>=1@ws_echo" \
	    --json $(BUILD)/bench-ws.json --markdown $(BUILD)/bench-ws.md $(BENCH_ARGS)

# Two worker processes each side, wrk unpinned (issue 4's bar): dbridge-asgi --workers 2
# against uvicorn --workers 2, and Gunicorn with our worker against uvicorn's.
PYBIN := $(abspath $(VENV)/bin)
bench-workers: install
	$(VENV)/bin/dbridge-asgi bench --scenario raw,fastapi_get --servers none --baseline uvicorn-w2 \
	    --server-cpus 0-1 --load-cpus 0-1 \
	    --server 'dbridge-asgi-w2=$(PYBIN)/dbridge-asgi {app} --app-dir {app_dir} --port {port} --workers 2 --no-access-log --log-level warning' \
	    --server 'uvicorn-w2=$(PYBIN)/uvicorn {app} --app-dir {app_dir} --port {port} --workers 2 --loop uvloop --http httptools --no-access-log --log-level warning' \
	    $(BENCH_ARGS)

bench-gunicorn: install
	$(VENV)/bin/dbridge-asgi bench --scenario fastapi_get --servers none --baseline UvicornWorker \
	    --server-cpus 0-1 --load-cpus 0-1 \
	    --server 'DBridgeWorker=$(PYBIN)/gunicorn -w 2 -k dbridge_asgi.workers.DBridgeWorker --chdir {app_dir} -b 127.0.0.1:{port} --log-level warning {app}' \
	    --server 'UvicornWorker=$(PYBIN)/gunicorn -w 2 -k uvicorn_worker.UvicornWorker --chdir {app_dir} -b 127.0.0.1:{port} --log-level warning {app}' \
	    $(BENCH_ARGS)

# The Gunicorn worker against the oldest Gunicorn uvicorn-worker supports (21.2), put in
# front of the venv's newer one for this run only.
GUNICORN_OLDEST := 21.2.0
test-gunicorn-oldest: install
	$(PY) -m pip install --quiet --target $(BUILD)/gunicorn-$(GUNICORN_OLDEST) gunicorn==$(GUNICORN_OLDEST)
	PYTHONPATH=$(abspath $(BUILD)/gunicorn-$(GUNICORN_OLDEST)) $(PY) -m pytest tests/python/test_gunicorn_worker.py

# The gates CI runs. callgrind: instructions per request of the core on a fixed replay,
# against load/callgrind_budget.json (exact; `make callgrind-budget` records a new one).
# perf: a short side-by-side run of the raw ASGI app with a floor generous enough that
# noise cannot fail a good change (measured: about 0.3× uvicorn's CPU per request).
callgrind-gate: build-cpp
	$(PYTHON) load/callgrind_gate.py --replay $(CPP_BUILD)/dbridge-replay

callgrind-budget: build-cpp
	$(PYTHON) load/callgrind_gate.py --replay $(CPP_BUILD)/dbridge-replay --update

# The whole server process (interpreter, loop, app) under callgrind: instructions per
# request in user space, dbridge-asgi against uvicorn, exact. CALLGRIND_SCENARIO: raw, fastapi_post,
# fastapi_get or echo_10k.
CALLGRIND_SCENARIO ?= raw
callgrind-asgi: install
	$(PY) load/callgrind_asgi.py --server dbridge-asgi --server uvicorn --scenario $(CALLGRIND_SCENARIO)

perf-gate: install
	$(VENV)/bin/dbridge-asgi bench --scenario raw --servers dbridge-asgi,uvicorn --duration 3 \
	    --warmup 1 --rounds 2 --gate "cpu:dbridge-asgi/uvicorn<=0.8"

# ---- soak ------------------------------------------------------------------------------
# SOAK_MINUTES (default 30) of mixed locust load on the FastAPI scenarios app; fails on an
# RSS growth trend after the warm-up, on descriptor growth and on any locust failure
# (a status outside 2xx/3xx, a connection error).
SOAK_MINUTES ?= 30
soak: install
	$(PY) load/soak.py --minutes $(SOAK_MINUTES) --json $(BUILD)/soak.json

clean:
	rm -rf $(BUILD) $(VENV)
