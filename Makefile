# Chiron's two commands:
#   make demo   install what is missing, build, run the main job end to end on real data
#   make test   install what is missing, build, run the whole test suite (also ASan+UBSan, TSan,
#               fuzz)
# Other targets: deps, build, check (tests of the main build only), asan, tsan, fuzz, bench,
# format.

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 10
CMAKE_FLAGS ?=

# ccache keyed on paths relative to the tree, so a fresh clone elsewhere (CI) reuses the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps build check test asan tsan fuzz demo bench format clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

check: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# ASan + UBSan over everything that does not link libtorch.
asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCHIRON_SANITIZE=ON \
	  -DCHIRON_WITH_TORCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -LE slow

# ThreadSanitizer over the torch-free parts that run threads of their own against real
# sandboxed workers: the training queue (runners, cancel, stop), model access (the prediction
# worker pool), sessions stopped from another thread, the sandbox's memory monitor, and dataset
# loads racing uploads and deletions, and the asynchronous mode's step pipeline.
TSAN_TESTS = training_queue_test jobs_model_access_test provider_facts_test rate_limiter_test \
  session_limits_test sandbox_test dataset_loader_test step_pipeline_test
tsan: deps
	cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHIRON_TSAN=ON \
	  -DCHIRON_WITH_TORCH=OFF $(CMAKE_FLAGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_TESTS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -j $(JOBS) -R '^($(subst $(eval) ,|,$(TSAN_TESTS)))$$'

# libFuzzer targets (clang), each run for a bounded time on its seed corpus.
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHIRON_FUZZ=ON \
	  -DCHIRON_WITH_TORCH=OFF -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

test: check asan tsan fuzz
	@echo "make test: all suites passed"

# The demo installs and builds only what it runs (chirond, chiron and its chiron-operator link,
# chiron-worker, the sandbox policy, the one built-in recipe whose code the provider registers),
# not the test suite, then runs; ninja's status line shows the steps done and the seconds
# elapsed. Cold, on 2 cores: docs/operations.md#building-for-the-demo.
DEMO_RECIPE ?= lenet
DEMO_TARGETS = chirond chiron chiron-worker chiron_sandbox_policy_file chiron_recipe_$(DEMO_RECIPE)
demo:
	@bash scripts/install-deps.sh --demo
	@test -f $(BUILD)/build.ninja || cmake -S . -B $(BUILD) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	@echo "make demo: building only what the demo runs (make test builds the tests)"
	NINJA_STATUS="[%f/%t, %es] " cmake --build $(BUILD) -j $(JOBS) --target $(DEMO_TARGETS)
	DEMO_RECIPE=$(DEMO_RECIPE) bash scripts/demo.sh $(BUILD)

bench: build
	bash scripts/bench.sh $(BUILD)

format:
	find src include tests fuzz bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
