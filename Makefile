# supakong: two commands on a fresh Debian machine (as root):
#   make demo   installs everything, brings the local sandbox VPS up, shows Realtime broken,
#               deploys the rendered Kong config, and verifies it (SUBSCRIBED)
#   make test   installs everything and runs the whole test suite (unit + sandbox integration)
SHELL := /bin/bash
PY := .venv/bin/python
FAB := .venv/bin/fab
APT_PACKAGES := docker.io openssh-server openssh-client busybox-static iproute2 python3-venv \
                systemd coreutils sudo dropbear-bin postgresql-15 postgresql-15-wal2json
# Everything the demo and the tests run may only reach sandbox hosts.
export SUPAKONG_HOST_ALLOWLIST ?= sandbox*

.PHONY: deps venv bytecode js demo test unit lint bench sandbox-up sandbox-down clean

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	command -v node >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  if echo "$$missing" | tr ' ' '\n' | grep -qx postgresql-15; then \
	    echo "stopping the cluster the postgresql-15 package made (the sandbox runs its own db)"; \
	    pg_ctlcluster 15 main stop 2>/dev/null || true; \
	  fi; \
	fi

# The dependencies come from requirements.lock, every file checked against its sha256
# (--require-hashes); supakong itself is installed on top, editable, with no dependency
# resolution of its own. Regenerate the lock after changing pyproject.toml's dependencies:
#   pip-compile --generate-hashes --allow-unsafe --all-build-deps --extra test --strip-extras \
#     --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
venv: .venv/.installed
.venv/.installed: pyproject.toml requirements.lock
	/usr/bin/python3 -m venv .venv
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# The editable install leaves supakong's own modules uncompiled, and with
# PYTHONDONTWRITEBYTECODE set (as on this machine) every `fab` run would compile them
# again (~0.1 s); pip compiles the dependencies, this compiles ours (only what changed).
bytecode: venv
	$(PY) -m compileall -q supakong tasks fabfile.py

js: tests/standins/js/node_modules/.installed
tests/standins/js/node_modules/.installed: tests/standins/js/package-lock.json
	cd tests/standins/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: deps venv bytecode
	$(FAB) sandbox-reset
	@echo; echo "== before: Realtime through the sandbox's Kong (seed config with preserve_host: true)"
	-$(FAB) verify-realtime -H sandbox
	@echo; echo "== deploy the rendered config"
	$(FAB) deploy-kong -H sandbox --diff
	@echo; echo "== again: nothing to do"
	$(FAB) deploy-kong -H sandbox
	@echo; echo "== after"
	$(FAB) verify-realtime -H sandbox

test: deps venv bytecode js
	$(PY) -m pytest -q -p no:cacheprovider

unit: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

lint: venv
	$(PY) -m ruff check supakong tasks tests
	$(PY) -m mypy supakong tasks

# conntrack: the benchmark's added-RTT pass forgets stale connection-tracking entries first.
bench: APT_PACKAGES += conntrack iptables
bench: deps venv bytecode
	$(PY) bench/bench.py

sandbox-up: deps venv
	$(FAB) sandbox-up

sandbox-down: venv
	$(FAB) sandbox-down

clean:
	-$(FAB) sandbox-down --purge
	rm -rf .venv tests/standins/js/node_modules
