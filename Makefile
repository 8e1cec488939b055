# mmsparse: the two commands of the README are `make demo` and `make test`.
# Each creates the virtualenv with the pinned stack on first use (mmcv 2.1.0 compiled
# from the sdist, ~12 min on 2 cores once; pip caches the wheel afterwards).

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.mmsparse-installed
# With a GPU and nvcc, `make FORCE_CUDA=1 ...` builds the CUDA ops too.
FORCE_CUDA ?= 0
DEMO_DIR ?= work_dirs/demo
PYTEST_ARGS ?=

.PHONY: env demo test install-check mim-check lint clean

env: $(STAMP)

$(STAMP): requirements/torch.txt requirements/build.txt requirements/runtime.txt requirements/tests.txt \
  requirements/deploy.txt setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "pip>=23.2,<25"
	$(PIP) install -q -r requirements/build.txt
	$(PIP) install -q -r requirements/torch.txt
	$(PY) -c "import mmcv._ext" 2>/dev/null || \
	  MMCV_WITH_OPS=1 FORCE_CUDA=$(FORCE_CUDA) MAX_JOBS=$$(nproc) \
	  $(PIP) install -c requirements/torch.txt mmcv==2.1.0 --no-build-isolation
	$(PIP) install -q -c requirements/torch.txt -r requirements/runtime.txt -r requirements/tests.txt \
	  -r requirements/deploy.txt
	$(PIP) install -q -c requirements/torch.txt --no-build-isolation --no-deps -e .
	$(PY) -c "import mmcv._ext, mmdet, mmpretrain, mmsparse; print('mmsparse env ready:', mmsparse.__version__)"
	touch $(STAMP)

demo: env
	$(PY) tools/misc/run_demo.py --work-dir $(DEMO_DIR)

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

# What a user with their own OpenMMLab environment runs: install the package without
# touching its dependencies, then check that install_requires (ranges) are satisfied.
install-check: env
	$(PIP) install -q --no-build-isolation --no-deps -e .
	$(PIP) check

# `mim train mmsparse ...` / `mim test mmsparse ...` from the built wheel: openmim goes
# into a throwaway folder with --no-deps (its own requirements would change .venv's pins).
MIM_SITE := build/mim-site
mim-check: env
	rm -rf $(MIM_SITE)
	$(PIP) install -q --no-deps --target $(MIM_SITE) -r requirements/mim.txt
	MMSPARSE_MIM_SITE=$(abspath $(MIM_SITE)) $(PY) -m pytest tests/test_packaging.py -k mim $(PYTEST_ARGS)

lint: env
	$(PY) -m flake8 mmsparse tools tests projects
	$(PY) -m isort --check-only --diff mmsparse tools tests projects

clean:
	rm -rf work_dirs data/toy_ytvis21
