# Operator entry points. `make demo` brings up a local lab and deploys the
# whole stack into it; `make test` runs every check CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
APP_VENV := app/.venv
BIN := $(CURDIR)/$(VENV)/bin
PYTHON ?= python3
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= $(if $(CI),0,1)
LAB_URL := https://127.0.0.1:$(or $(LAB_HTTPS_PORT),8443)/
SCENARIO ?= default
# Every Molecule scenario `make test` runs: the whole-stack ones (what
# crosses roles), the two-host hardening one, then one per role (single
# small hosts) and the collection's. Lanes take the next one from the list
# as they finish: longest first, the short per-role scenarios fill the
# lanes at the end.
SCENARIOS ?= scaleout default hardening backup replica acme postgresql collection base sshd forum nginx users firewall fail2ban loadbalancer redis
# Scenarios run side by side: each waits mostly on apt and SSH, so two
# lanes on two cores finish well before one (three measured no faster: the
# whole-stack scenarios are CPU-bound once three of them overlap).
MOLECULE_LANES ?= 2

.PHONY: help venv app-venv testbed demo demo-down demo-browser lint app-test molecule molecule-all test bench bench-hardening bench-app bench-backup bench-failover clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt requirements.yml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/ansible-galaxy collection install --offline -r requirements.yml
	touch $@

venv: $(VENV)/.installed ## Install the pinned Python toolchain into .venv

$(APP_VENV)/.installed: app/requirements.txt app/requirements-test.txt
	$(PYTHON) -m venv $(APP_VENV)
	$(APP_VENV)/bin/pip install --quiet --disable-pip-version-check -r app/requirements-test.txt
	touch $@

app-venv: $(APP_VENV)/.installed ## Install the forum's dependencies into app/.venv

testbed: ## Install/start Docker and build the Debian 12 and 13 base images
	scripts/testbed.sh

demo: venv ## Create the lab (web1, db1) and deploy the whole stack into it
	scripts/lab.sh up
	$(BIN)/ansible-playbook -i inventory/lab site.yml
	@curl -kfsS -o /dev/null --retry 5 --retry-delay 1 --retry-all-errors $(LAB_URL) \
	  && echo "The forum is up: $(LAB_URL) (self-signed certificate; http://127.0.0.1:$(or $(LAB_HTTP_PORT),8080)/ redirects there)"

demo-down: ## Remove the lab
	scripts/lab.sh down

demo-browser: venv ## Browser test (headless Chromium) against the lab; screenshots in .cache/artifacts/browser/
	@test -x /usr/bin/chromedriver || { echo "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"; exit 1; }
	FORUM_BASE_URL=$(LAB_URL) FORUM_SERVER_NAME= $(BIN)/pytest -p no:cacheprovider --noconftest -v \
	  molecule/default/tests/test_browser.py

lint: venv ## yamllint and ansible-lint (production profile)
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production

app-test: app-venv ## The forum's own test suite
	cd app && .venv/bin/pytest -q

molecule: venv testbed ## One Molecule scenario: make molecule SCENARIO=default
	$(BIN)/molecule test -s $(SCENARIO)

molecule-all: venv testbed ## Every scenario in SCENARIOS, MOLECULE_LANES at a time; reports all failures at the end
	MOLECULE=$(BIN)/molecule scripts/molecule-lanes.sh -j $(MOLECULE_LANES) $(SCENARIOS)

# Lint and the forum's own suite need no containers: they run beside the
# Molecule lanes instead of before them. -k: every part runs and reports
# even when another fails (make's status is then non-zero). No output
# sync: the lanes print each scenario's log whole as it ends, and make
# would otherwise hold all of them back until the last one.
test: ## Everything: lint, app tests, every Molecule scenario (side by side)
	$(MAKE) -k -j3 --no-print-directory lint app-test molecule-all

bench: venv testbed ## Whole-stack figures: converge, re-run, scale-out, deploy, wrk (BENCH_ARGS=--skip-scale ...; backups: make bench-backup)
	$(BIN)/python bench/stack.py $(BENCH_ARGS)

bench-hardening: venv testbed ## ssh-audit and lynis scores of the hardening roles (figures)
	$(BIN)/python bench/hardening.py

bench-app: app-venv ## Forum throughput with wrk (figures; needs wrk and postgresql)
	$(APP_VENV)/bin/python bench/app_bench.py

bench-backup: venv app-venv testbed ## pgBackRest figures: backup/restore of 100k posts, WAL archive lag
	$(APP_VENV)/bin/python bench/backup.py $(BENCH_ARGS)

bench-failover: venv testbed ## Failover duration under write load (the replica scenario's figures)
	mkdir -p .cache; set -o pipefail; $(BIN)/molecule test -s replica 2>&1 | tee .cache/bench-failover.log \
	  | grep --line-buffered -E 'failover: [0-9]+ posts|[0-9]+ (passed|failed)'

clean: demo-down ## Remove the lab, caches and virtualenvs
	rm -rf $(VENV) $(APP_VENV) .cache
