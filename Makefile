# Build, run and test flightpickle. The two commands a newcomer needs:
#
#   make demo   set everything up, then run examples/spark_app.py through
#               spark-submit with the plugin jar on a local two-executor cluster
#   make test   set everything up, then run the Rust, Java and Python suites
#
# Each stage prints its duration. Set-up is incremental: a second run rebuilds
# only what changed (stamps for the venv, cargo/maturin/maven for the rest).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
JAR := jvm/target/flightpickle-spark-$(VERSION).jar
PLUGIN := io.flightpickle.spark.FlightPicklePlugin
MASTER := local-cluster[2,1,1024]
JVM_FAST_START := -XX:+UseSerialGC -XX:TieredStopAtLevel=1
# Where the pinned pyspark keeps Spark's jars; the plugin compiles against them
# because Spark 4.3.0 is not published to Maven Central.
SPARK_JARS = $(shell $(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')

# Rust builds link the Python crate against the venv's interpreter. The two
# release libraries (the Python extension, by maturin, and the JNI library, by
# the jar's build: jvm/pom.xml names the same directory) share a target dir of
# their own: they need the Arrow and gRPC crates with the same features, so the
# second build reuses the first's instead of compiling them again, and the
# debug builds of `cargo test` in target/ do not rebuild either's work.
export PYO3_PYTHON := $(abspath $(PY))
RELEASE_TARGET := $(abspath target/release-dylibs)
# The extension is built profile-guided (python/build_extension.sh), about
# half a minute more than a plain release build: the benchmarks and the tests see the
# build users get. `make python PGO=0` makes a plain one, for a quicker turn
# while changing Rust code; the next `make python` without it is guided again.
export PGO ?= 1
EXTENSION_BUILD = $(if $(filter 0,$(PGO)),maturin develop --release,profile-guided: instrumented build$(comma) training run$(comma) release build)
# Spark on this kind of machine: stay on loopback, run workers in the venv.
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

# CPython 3.12 runs the pickler's, the executor's and some of Spark's suites a second time (test-python312) from a
# venv of its own, with an extension built for it in a target dir of its own:
# PyO3's crates are built for one interpreter, so sharing RELEASE_TARGET would
# rebuild them for each in turn. The interpreter is the first of these that
# runs: python3.12 on the PATH; pyenv's newest 3.12, looked up beside the
# interpreter $(PYTHON) comes from, under PYENV_ROOT, or by asking pyenv (the
# first two work where pyenv's shims are on the PATH but pyenv itself is not);
# the system's. `make PYTHON312=/path/to/python3.12` names one outright. With
# none, test-python312 says so and is skipped.
python312_candidates = \
  { command -v python3.12 || true; } && \
  { base=$$($(PYTHON) -c 'import sys; print(sys.base_prefix)') && ls -d "$${base%/*}"/3.12*/bin/python3.12 | sort -rV || true; } && \
  { ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.12*/bin/python3.12 | sort -rV || true; } && \
  { prefix=$$(pyenv prefix 3.12) && echo "$$prefix/bin/python3.12" || true; } && \
  { ls -d /usr/local/bin/python3.12 /usr/bin/python3.12 || true; }
PYTHON312 ?= $(shell { $(python312_candidates); } 2>/dev/null | \
  while read -r candidate; do "$$candidate" -c '' 2>/dev/null && { echo "$$candidate"; break; }; done)
VENV312 := .venv312
PY312 := $(VENV312)/bin/python
STAMPS312 := $(VENV312)/.stamps
PY312_TARGET := $(abspath target/py312)
# On 3.12: the pickler's suites, the executor service's, and Spark with 3.12
# drivers and workers (the UDF kinds, the local transport, spark-submit).
TESTS312 := tests/pickler tests/sealing tests/targets tests/executor tests/autoenable \
  tests/test_installation.py tests/spark/test_udfs_on_cluster.py tests/spark/test_udf_kinds.py \
  tests/spark/test_transport_local.py tests/spark/test_plugin_submit.py

rust_files = Cargo.toml Cargo.lock $(shell find $(1) -name '*.rs' -o -name Cargo.toml 2>/dev/null)
CORE_SOURCES := $(call rust_files,src)
# The extension's build also depends on the workload its profile is taken on.
PY_SOURCES := $(CORE_SOURCES) $(call rust_files,python/src python/Cargo.toml) python/pyproject.toml \
  python/build.rs python/build_extension.sh benchmarks/profile_workload.py benchmarks/cases.py benchmarks/subjects.py
JNI_SOURCES := $(CORE_SOURCES) $(call rust_files,jvm/native)
JAVA_SOURCES := jvm/pom.xml $(shell find jvm/src -type f 2>/dev/null)

# $(call maven,ARGS): Debian's Maven 3.8 prints colour resets even in batch
# mode, which garble logs; strip them (pipefail keeps Maven's exit status).
maven = mvn --batch-mode -f jvm/pom.xml -Dspark.jars.dir=$(SPARK_JARS) $(1) 2>&1 | sed -u 's/\x1b\[[0-9;]*m//g'

# A comma in an argument of $(call timed,...).
comma := ,
# $(call timed,STAGE,COMMAND): run COMMAND, then say how long STAGE took.
timed = printf '\n==> %s\n' "$(1)"; s=$$(date +%s); $(2); printf '<== %s: %ss\n' "$(1)" $$(( $$(date +%s) - s ))

.PHONY: help setup venv python jar demo test test-rust test-java test-python test-python312 test-fuzz lock-python clean FORCE

help:
	@sed -n '2,9p' Makefile | sed 's/^# \{0,1\}//'

setup: venv python jar

venv: $(STAMPS)/requirements
$(STAMPS)/requirements: python/requirements-dev.txt
	@$(call timed,venv: create $(VENV) and install pinned packages,\
	  { [ -x $(PY) ] || $(PYTHON) -m venv $(VENV); } && \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r python/requirements-dev.txt)
	@mkdir -p $(STAMPS) && touch $@

python: $(STAMPS)/extension
# The install is editable: Python files are read from python/flightpickle, so
# only Rust or packaging changes need a rebuild. An editable install leaves out
# the wheel's auto-enabling .pth file, so it is copied beside the venv's own
# (its name sorts after flightpickle.pth, which puts python/ on sys.path).
AUTOENABLE_PTH := python/flightpickle_autoenable.pth
$(STAMPS)/extension: $(STAMPS)/requirements $(PY_SOURCES) $(AUTOENABLE_PTH) $(STAMPS)/extension-kind
	@$(call timed,python: build the flightpickle extension ($(EXTENSION_BUILD)),\
	  python/build_extension.sh $(VENV) $(RELEASE_TARGET))
	@cp $(AUTOENABLE_PTH) "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"
	@touch $@

# The kind of extension build asked for (PGO=1 or 0), in a file rewritten only
# when it differs from the last build's: switching PGO rebuilds the extension,
# and a plain build made for a quick turn is not kept by a later `make test`.
$(STAMPS)/extension-kind $(STAMPS312)/extension-kind: FORCE
	@mkdir -p $(@D) && { echo '$(PGO)' | cmp -s - $@ || echo '$(PGO)' > $@; }

FORCE:

jar: $(JAR)
$(JAR): $(STAMPS)/requirements $(JNI_SOURCES) $(JAVA_SOURCES)
	@$(call timed,jar: build the JNI library and the plugin jar (mvn package),\
	  $(call maven,--quiet -DskipTests package))

demo: setup
	@$(call timed,demo: spark-submit examples/spark_app.py on $(MASTER),\
	  $(VENV)/bin/spark-submit --master '$(MASTER)' \
	    --jars $(JAR) --conf spark.plugins=$(PLUGIN) \
	    --conf spark.executor.memory=512m --conf spark.log.level=WARN \
	    --conf spark.driver.extraJavaOptions='$(JVM_FAST_START)' \
	    --conf spark.executor.extraJavaOptions='$(JVM_FAST_START)' \
	    examples/spark_app.py)

test: setup test-rust test-java test-python test-python312 test-fuzz

# Formatting is checked first: it takes a second and keeps diffs about what changed.
test-rust: $(STAMPS)/requirements
	@$(call timed,test: Rust (cargo fmt --check and cargo test --workspace),\
	  cargo fmt --all --check && cargo test --workspace)

test-java: $(STAMPS)/extension
	@$(call timed,test: Java (mvn test),\
	  $(call maven,test))

test-python: setup
	@$(call timed,test: Python and Spark (pytest),\
	  FLIGHTPICKLE_JAR=$(abspath $(JAR)) $(PY) -m pytest tests)

# The pickler, the executor and Spark on CPython 3.12: its own venv (python/requirements-py312.txt,
# the few packages these suites import) and extension build. Its target dir
# starts as a copy of RELEASE_TARGET when that exists, so the Arrow and gRPC
# crates, which do not depend on the interpreter, are not compiled again.
$(STAMPS312)/requirements: python/requirements-py312.txt
	@$(call timed,venv312: create $(VENV312) (from $(or $(PYTHON312),the existing one)) and install pinned packages,\
	  { [ -x $(PY312) ] || $(PYTHON312) -m venv $(VENV312); } && \
	  $(PY312) -m pip install --quiet --disable-pip-version-check -r python/requirements-py312.txt)
	@mkdir -p $(STAMPS312) && touch $@

$(STAMPS312)/extension: $(STAMPS312)/requirements $(PY_SOURCES) $(STAMPS312)/extension-kind
	@$(call timed,python312: build the flightpickle extension for CPython 3.12 ($(EXTENSION_BUILD)),\
	  { [ -d $(PY312_TARGET) ] || [ ! -d $(RELEASE_TARGET) ] || cp -a $(RELEASE_TARGET) $(PY312_TARGET); } && \
	  PYO3_PYTHON=$(abspath $(PY312)) python/build_extension.sh $(VENV312) $(PY312_TARGET))
	@cp $(AUTOENABLE_PTH) "$$($(PY312) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"
	@touch $@

ifneq ($(PYTHON312)$(wildcard $(PY312)),)
test-python312: $(STAMPS312)/extension $(JAR)
	@$(call timed,test: the pickler$(comma) the executor service and Spark on CPython 3.12 (pytest $(TESTS312)),\
	  FLIGHTPICKLE_JAR=$(abspath $(JAR)) PYSPARK_PYTHON=$(abspath $(PY312)) PYSPARK_DRIVER_PYTHON=$(abspath $(PY312)) \
	    $(PY312) -m pytest $(TESTS312))
else
test-python312:
	@printf '\n==> test: the pickler, the executor service and Spark on CPython 3.12: SKIPPED, no CPython 3.12 found (see PYTHON312 in the Makefile; make PYTHON312=/path/to/python3.12 names one)\n'
endif

# Fuzzing needs nightly Rust and cargo-fuzz; both are installed on first use.
# Each target runs FUZZ_SECONDS on a scratch copy of its corpus (the seeds in
# tests/fuzz/corpus stay untouched); a crash fails the run and leaves its input
# in tests/fuzz/artifacts. `make test-fuzz FUZZ_SECONDS=3600` for a long run.
# Panics the code under test catches itself do not fail the run, and are not
# printed (transport_batch: arrow asserting on malformed nested columns, which
# src/transport/caught_panic.rs turns into an error in silence).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := envelope_open pickle_inspect command_inspect transport_batch
CARGO_FUZZ_VERSION := 0.13.2
test-fuzz:
	@$(call timed,test: fuzz $(FUZZ_TARGETS) for $(FUZZ_SECONDS)s each,\
	  { rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal; } && \
	  { cargo fuzz --version 2>/dev/null | grep -q $(CARGO_FUZZ_VERSION) || cargo install --locked cargo-fuzz --version $(CARGO_FUZZ_VERSION); } && \
	  for target in $(FUZZ_TARGETS); do \
	    mkdir -p target/fuzz-corpus/$$target && \
	    cargo +nightly fuzz run --fuzz-dir tests/fuzz $$target target/fuzz-corpus/$$target tests/fuzz/corpus/$$target -- \
	      -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 2>&1 | grep -E '^(Done|stat::number_of_executed_units|==|SUMMARY|.*panicked)' | \
	      sed -E 's/ \([0-9]+\) panicked/ panicked/' | uniq -c; \
	  done)

# Benchmarks against cloudpickle and pickle (benchmarks/README.md): a table on
# stdout, JSON and a PNG in benchmarks/results/. `make bench BENCH_ARGS=--quick`
# for a smoke run, `BENCH_ARGS='--cases lambda,class'` for some cases only.
BENCH_ARGS ?=
.PHONY: bench
bench: $(STAMPS)/extension
	@$(call timed,bench: flightpickle vs cloudpickle vs pickle,\
	  $(PY) -m benchmarks.run $(BENCH_ARGS))

lock-python: $(STAMPS)/requirements
	$(PY) -m pip install --quiet -r python/requirements-dev.in
	{ sed -n '1,2p' python/requirements-dev.txt; $(PY) -m pip freeze --exclude-editable; } > python/requirements-dev.txt.new
	mv python/requirements-dev.txt.new python/requirements-dev.txt

clean:
	cargo clean
	rm -rf $(VENV) $(VENV312) jvm/target python/flightpickle/*.so
