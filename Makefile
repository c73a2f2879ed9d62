# sslrun: `make run` and `make test` set everything up on a fresh machine.
PY ?= python3
COMPARE_ARGS ?=  # e.g. "--dataset cifar10": bench/compare.py --help
BENCH_ARGS ?=  # e.g. "--work /tmp/b --resume": continue a full run over several sittings (bench/README.md)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_ARGS ?= pretext=rotation dataset=fashion_mnist

.PHONY: install data run test smoke lint clean bench-data bench-precision bench-cpu bench-steps bench-protocol bench-compare bench-methods bench-hygiene bench bench-quick

$(STAMP): pyproject.toml requirements-ci.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements-ci.txt -e '.[test,sweep,docs]'
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST offline: Debian's package holds the original files. With a
# network and no Debian, sslrun downloads it through tensorflow-datasets.
data: install
	@if [ -d /usr/share/datasets/fashion-mnist ] || [ -n "$$SSLRUN_DATA_DIR" ]; then \
	  echo "fashion_mnist: local files found"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) \
	  || echo "apt-get could not install dataset-fashion-mnist; sslrun will try tensorflow-datasets"; \
	else echo "no local Fashion-MNIST; sslrun will download it through tensorflow-datasets"; fi

run: data
	$(BIN)/sslrun $(RUN_ARGS)

test: install
	$(BIN)/python -m pytest -q -n 2 --dist worksteal  # two workers: most tests wait on subprocesses, so 2 cores stay busy; an idle one takes the other's queued tests

smoke: install
	$(BIN)/sslrun experiment=smoke

lint: install  ## one formatter and one line length (120, pyproject.toml): ruff format's, checked, then ruff's rules
	$(BIN)/ruff format --check sslrun tests bench docs
	$(BIN)/ruff check sslrun tests bench docs

clean:
	rm -rf $(VENV) build *.egg-info

bench-data: data  ## input pipeline vs training throughput per data set -> bench/DATA_RESULTS.md
	$(BIN)/python bench/data_pipeline.py

bench-precision: install  ## mixed_bfloat16 vs float32 pretext training images/s, alternating in one process -> bench/PRECISION_RESULTS.md
	$(BIN)/python bench/precision.py

bench-cpu: install  ## pretext images/s with TensorFlow's oneDNN kernels off and on, float32 and mixed_bfloat16 -> bench/CPU_RESULTS.md
	$(BIN)/python bench/cpu.py

bench-steps: install  ## downstream.steps_per_execution: ms per fine-tuning step at 1, 8, 32 -> bench/STEPS_RESULTS.md
	$(BIN)/python bench/steps_per_execution.py

bench-protocol: data  ## the default fine-tuning protocol, chosen on validation images over 3 data sets x 2 budgets -> bench/PROTOCOL_RESULTS.md
	$(BIN)/python bench/protocol.py

bench-compare: data  ## experiment=compare (rotation, simclr, vicreg) on Fashion-MNIST: wall, peak RSS, scratch trainings, a separate run -> bench/COMPARE_RESULTS.md
	$(BIN)/python bench/compare.py $(COMPARE_ARGS)

bench-methods: data  ## every pretext method at the same pretext wall-clock budget + random init: linear, kNN, RankMe, Spearman -> bench/METHODS_RESULTS.md
	$(BIN)/python bench/methods.py $(METHODS_ARGS)

HYGIENE_FOLDER ?= /tmp/cifarjpg  # an image folder of 50,000 images, e.g. the CIFAR-10 train split as JPEG folders
HYGIENE_ARGS ?=  # --imagehash: also time the imagehash package (pip install imagehash) for comparison
bench-hygiene: install  ## pool hygiene on 50,000 images: the check's seconds and the pairs found -> bench/HYGIENE_RESULTS.md
	$(BIN)/python bench/hygiene.py --folder $(HYGIENE_FOLDER) $(HYGIENE_ARGS)

bench: data  ## each seed document's own pipeline vs its presets, full scale (hours) -> bench/RESULTS.md
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-quick: data  ## the same at reduced scale (12.8 min on 2026-12-06) -> bench/RESULTS_QUICK.md
	$(BIN)/python bench/run.py --quick $(BENCH_ARGS)

# Label selection vs random and stratified (issue 29; bench/SELECT_RESULTS.md). Trains a short rotation pretext
# on the CIFAR-10 JPEG folder (cached), then every strategy's study; BENCH_ARGS to shorten, e.g. --repeats 3
SELECT_DATA ?= /tmp/cifarjpg
SELECT_OUT ?= /tmp/select-bench
bench-select:
	nice -n 10 $(BIN)/python -m sslrun dataset=image_folder dataset.path=$(SELECT_DATA) pretext=rotation encoder=small_cnn \
	  trainer.epochs=30 trainer.budget_minutes=4 trainer.progress=false tensorboard=false stage=pretext \
	  hydra.run.dir=$(SELECT_OUT)/cifar-pretext
	nice -n 10 $(BIN)/python bench/select.py --pretext $(SELECT_OUT)/cifar-pretext --out $(SELECT_OUT)/cifar $(BENCH_ARGS)
