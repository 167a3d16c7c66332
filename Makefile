# UCX Spark: `make demo` and `make test` are all a fresh clone needs.
# `make setup` builds .venv, installs the pinned Python packages and resolves
# the Delta Lake jars from Maven Central into .jars/delta (no network needed
# by Spark sessions afterwards), and the Data Docs' scripts and styles from the
# npm registry into ucx_spark/_vendor/web (Data Docs then open offline).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ucx-setup-done
DEMO_DIR ?= data/demo

.PHONY: test-all setup demo test lint fuzz broken-builds bench clean check-java chromium eemeter-reference

setup: $(STAMP) chromium

# Headless Chromium (Debian package chromium) renders the CX report in its
# screenshot test: installed here when missing and running as root.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (headless browser for the CX report test) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "warning: chromium not found; the CX report's screenshot test needs it: sudo apt-get install chromium" >&2; \
	  fi; }

check-java:
	@command -v java >/dev/null 2>&1 || { echo "error: Java 17+ is required (java not found on PATH). Install it, e.g. apt-get install openjdk-17-jre-headless" >&2; exit 1; }
	@v=$$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $$2}'); \
	  major=$${v%%.*}; \
	  if [ -z "$$major" ] || [ "$$major" -lt 17 ]; then echo "error: Java 17+ is required, found '$$v' ($$(command -v java))" >&2; exit 1; fi
	@command -v javac >/dev/null 2>&1 || { echo "error: a JDK 17+ (javac) is required to compile the Thrift server's authenticator. Install it, e.g. apt-get install openjdk-17-jdk-headless" >&2; exit 1; }
	@command -v mvn >/dev/null 2>&1 || { echo "error: Maven (mvn) is required to fetch the Delta Lake jars from Maven Central. Install it, e.g. apt-get install maven" >&2; exit 1; }

$(STAMP): pyproject.toml conf/maven/pom.xml scripts/filter_jars.py scripts/vendor_web_assets.py ucx_spark/quality/docs_offline.py conf/thrift-auth/src/org/ucx/auth/UcxPasswordAuthenticator.java | check-java
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "error: Python 3.11 is required (pyspark 4.2 + shap 0.51 pins), found " + sys.version.split()[0] + "; run make PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -e ".[dev]"
	mvn --batch-mode --quiet -f conf/maven/pom.xml dependency:copy-dependencies
	$(PY) scripts/filter_jars.py .jars/maven .jars/delta
	$(PY) scripts/vendor_web_assets.py
	rm -rf .jars/auth && mkdir -p .jars/auth/classes
	javac -Xlint:none -cp "$$($(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')/*" \
	  -d .jars/auth/classes conf/thrift-auth/src/org/ucx/auth/UcxPasswordAuthenticator.java
	jar cf .jars/auth/ucx-thrift-auth.jar -C .jars/auth/classes .
	touch $(STAMP)

demo: setup
	$(VENV)/bin/ucx demo --out $(DEMO_DIR)

# The default run (about 12 minutes on 2 cores) leaves out the tests marked slow; test-all (CI) runs
# every test (about an hour on 2 cores).
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -m "not slow"

test-all: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

# Property-based fuzzing of the landing-file reader: 2,000 examples per property (the default
# test run takes 50), Hypothesis' statistics printed (examples run, time).
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest -q tests/bronze/test_fuzz_landing.py --hypothesis-show-statistics

# Each hardening protection broken on purpose, its tests shown to fail (issue 24): one case at a
# time in a worktree of HEAD (about 1-8 minutes each; CASES="a b" for some).
broken-builds: setup
	$(VENV)/bin/python scripts/broken_builds.py $(foreach c,$(CASES),--case $(c))

lint: setup
	$(VENV)/bin/ruff check .

# OpenEEmeter's answer on its own sample meters, recorded in tests/reference/eemeter_daily.csv.gz for
# tests/insights/test_baselines_eemeter.py (issue 21). eemeter is a development check only: it pins
# numba, nlopt and scikit-fda, so it lives in its own venv (and needs pytz and pandas 2.2, which
# eemeter 4.1.1 does not declare), never in the product's.
eemeter-reference:
	test -x .venv-eemeter/bin/python || $(PYTHON) -m venv .venv-eemeter
	.venv-eemeter/bin/pip install --quiet "eemeter==4.1.1" pytz "pandas==2.2.3"
	.venv-eemeter/bin/python scripts/eemeter_reference.py tests/reference/eemeter_daily.csv.gz

clean:
	rm -rf $(VENV) .venv-eemeter .jars data .pytest_cache
