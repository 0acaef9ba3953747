# Two commands for a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint train bench clean

$(BIN)/fanzha: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/fanzha

run: $(BIN)/fanzha
	$(BIN)/fanzha demo
	test -d fanzha-data/ledger || $(BIN)/fanzha simulate --out fanzha-data/ledger --accounts 20000 --transfers 200000
	FANZHA_LEDGER_DIR=fanzha-data/ledger $(BIN)/fanzha serve --data-dir fanzha-data

test: $(BIN)/fanzha
	$(BIN)/ruff check fanzha tests bench
	$(BIN)/python -m pytest

train: $(BIN)/fanzha
	$(BIN)/fanzha train

bench: $(BIN)/fanzha
	$(BIN)/python bench/bench_detect.py
	$(BIN)/python bench/bench_watchlist.py
	$(BIN)/python bench/bench_api.py

clean:
	rm -rf $(VENV) build *.egg-info
