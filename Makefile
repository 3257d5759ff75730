# Fresh-machine entry points (see README.md). Everything lives in .venv.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
SECTORS := $(sort $(dir $(wildcard sectors/*/pyproject.toml)))
# The real data sets: a mirror consulted before the official URLs (CI: ../shared/data).
export BIGMODEL_DATA_MIRROR ?= $(abspath $(wildcard ../shared/data))
export BIGMODEL_SHARED_DATA ?= $(abspath $(wildcard ../shared/data))
RUN     ?= runs/customer_service-demo

.PHONY: setup demo test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: a bare "torch" requirement pulls a multi-GB CUDA build.
	# timm needs torchvision; 0.29.1 pairs with torch 2.14.1 (both lie on this machine's disk).
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1

$(VENV)/.installed: $(BIN)/python pyproject.toml $(wildcard sectors/*/pyproject.toml)
	$(BIN)/pip install -q -e '.[cpu,test]'
	$(foreach s,$(SECTORS),$(BIN)/pip install -q -e '$(s)[test]' &&) true
	touch $@

setup: $(VENV)/.installed

# The main job: install a bundled sector, fine-tune it for real, evaluate, export to ONNX, serve.
demo: setup
	$(BIN)/bigmodel sector install -e customer_service
	$(BIN)/bigmodel sector list
	$(BIN)/bigmodel train customer_service --preset demo --out $(RUN) --overwrite
	$(BIN)/bigmodel evaluate $(RUN)
	$(BIN)/bigmodel export --onnx $(RUN) --optimize
	$(BIN)/bigmodel predict $(RUN) --provider auto \
	  "I still have not received my new card" "How do I top up by bank transfer?" "hello?"
	$(BIN)/bigmodel value $(RUN) --chart $(RUN)/value.png

# exit 5 (no tests collected) is a failure with its own message
test: setup
	$(BIN)/python -m pytest tests $(addsuffix tests,$(SECTORS)) -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: setup
	$(BIN)/python benchmarks/cli_startup.py

clean:
	rm -rf $(VENV) runs build dist *.egg-info
