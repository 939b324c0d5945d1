# Everything a fresh clone needs: `make test` builds its own environment and runs the suite.
UV_VERSION := 0.13.9
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: test run lint typecheck pytest typescript bench-engine clean chromium bytecode

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --compile-bytecode: the installed packages' .pyc are written once here, not left to each
# process (which cannot cache them where PYTHONDONTWRITEBYTECODE is set, and then compiles
# FastAPI, SQLAlchemy, pydantic... again: seconds for every `ballast` process a test starts).
$(VENV)/.synced: $(UV) uv.lock pyproject.toml server/pyproject.toml server/setup.py sdk/python/pyproject.toml \
		server/src/ballast_exchange/domain/compiled/_engine.pyx
	$(UV) sync --locked --all-packages --group dev --compile-bytecode
	touch $@

test: lint typecheck pytest typescript

# The sandbox exchange on SQLite under ./var, with demo markets and a funded demo key.
run: $(VENV)/.synced
	$(VENV)/bin/ballast serve

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check server sdk tests bench
	$(VENV)/bin/ruff format --check server sdk tests bench

typecheck: $(VENV)/.synced
	$(VENV)/bin/mypy --strict server/src/ballast_exchange
	$(VENV)/bin/mypy --strict sdk/python/src/ballast

# The dashboard's browser tests drive Debian's Chromium through Playwright (never a browser
# Playwright downloads). Installed as root, or with sudo; otherwise those tests skip (and fail
# under BALLAST_REQUIRE_SERVICES=1).
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "chromium is missing and cannot be installed here (not root, no sudo)" >&2; \
	fi

# Our own sources' .pyc too, for the same reason (a source edited later is recompiled as usual).
bytecode: $(VENV)/.synced
	$(VENV)/bin/python -m compileall -q server/src sdk/python/src

# Four workers whatever the cores: most of the suite's time is waiting (servers starting in
# child processes, switches and orders expiring, fixed soak windows), not CPU; on 2 cores, 4
# workers took 351 s where 2 took 581 at load 5-8, 213 s where 2 took 266 at load 1-5.
# Modules go to the workers whole (loadscope: a module's server fixture is started once), in
# collection order, which tests/conftest.py makes longest first (--no-loadscope-reorder: not
# by test count), so no long module runs alone at the end.
pytest: $(VENV)/.synced chromium bytecode
	$(VENV)/bin/pytest -n 4 --dist loadscope --no-loadscope-reorder --durations 15

# The TypeScript SDK (sdk/typescript, `@ballast/sdk`): npm dependencies from its lockfile, then
# tsc --strict, biome, the ESM + CommonJS build, and its tests against real `ballast serve`
# processes from .venv (started on free loopback ports by the tests themselves).
TS_SDK := sdk/typescript
typescript: $(VENV)/.synced bytecode
	cd $(TS_SDK) && npm ci --no-audit --no-fund
	cd $(TS_SDK) && npm run typecheck
	cd $(TS_SDK) && npm run lint
	cd $(TS_SDK) && npm run build
	cd $(TS_SDK) && npm run build:test && node build/test/run.js

# The engine benchmark also replays the stream through third-party engines (the `bench` group).
bench-engine: $(UV)
	$(UV) sync --locked --all-packages --group dev --group bench --compile-bytecode
	$(VENV)/bin/python bench/engine.py

clean:
	rm -rf $(VENV) $(TOOLS)
