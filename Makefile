# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean screenshots bundle wheelhouse

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet 'mysqlclient>=2.2,<3' >/dev/null 2>&1 \
		|| echo "note: mysqlclient did not build (no MariaDB/MySQL client library); using PyMySQL"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m desktop_backup run-demo

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Benchmarks: never part of `make test` or CI (see bench/README.md).
bench: $(STAMP)
	$(PY) bench/backup_bench.py
	$(PY) bench/restore_bench.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/ui_responsiveness.py
	$(PY) bench/encryption_bench.py
	$(PY) bench/offsite_bench.py

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py

# The one-folder app (PyInstaller) in dist/desktop-backup, checked with its own --self-check.
bundle: $(STAMP)
	PY=$(PY) bash installer/build_bundle.sh

# Every wheel needed to install offline on this OS, checked by an offline install + self-check.
wheelhouse: $(STAMP)
	PY=$(PY) bash installer/build_wheelhouse.sh --check

clean:
	rm -rf $(VENV) build dist wheelhouse *.egg-info
