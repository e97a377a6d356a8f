# quantd — the two commands a newcomer needs: `make demo` and `make test`.
# Both install their own dependencies (scripts/install-deps.sh, Debian 12 packages) and build.

BUILD_DIR ?= build
ENGINE_ONLY_DIR ?= build-engine-only
# Warnings are errors in CI (CI=true); locally they are only shown.
WERROR ?= $(if $(CI),ON,OFF)
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
JOBS ?= $(shell nproc)

# Fuzzing (tests/fuzz): FUZZ_SECONDS per target; `make fuzz` = 5 targets x 120 s = 10 minutes.
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 120

.PHONY: all deps configure build test test-only engine-only fuzz-build fuzz demo format clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DQUANTD_WERROR=$(WERROR) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Proves the engine builds with the service's dependencies (gRPC, protobuf, SQLite) unavailable,
# as on the GPU machines, and without CUDA (the main build compiles the CUDA backend where nvcc is).
engine-only: deps
	cmake -S . -B $(ENGINE_ONLY_DIR) -G Ninja -DQUANTD_ENGINE_ONLY=ON -DQUANTD_WERROR=$(WERROR) \
	  -DQUANTD_CUDA=OFF \
	  -DCMAKE_DISABLE_FIND_PACKAGE_gRPC=ON -DCMAKE_DISABLE_FIND_PACKAGE_Protobuf=ON \
	  -DCMAKE_DISABLE_FIND_PACKAGE_SQLite3=ON $(CMAKE_FLAGS)
	cmake --build $(ENGINE_ONLY_DIR) -j $(JOBS) --target quantize-awq

test-only:
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

# CI runs each fuzz target briefly too (docs/security.md); `make fuzz` runs them for long.
test: build engine-only
	$(MAKE) --no-print-directory test-only
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=15

# The parsers of untrusted files under libFuzzer with ASan + UBSan (Debian's clang): engine-only, so
# no gRPC, and its own build directory.
fuzz-build: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -G Ninja -DQUANTD_FUZZ=ON -DQUANTD_ENGINE_ONLY=ON \
	  -DQUANTD_CUDA=OFF -DCMAKE_DISABLE_FIND_PACKAGE_gRPC=ON -DCMAKE_DISABLE_FIND_PACKAGE_Protobuf=ON \
	  -DCMAKE_DISABLE_FIND_PACKAGE_SQLite3=ON $(CMAKE_FLAGS)
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target quantd_fuzzers

fuzz: fuzz-build
	bash scripts/run-fuzzers.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

demo: build
	@bash scripts/demo-service.sh $(BUILD_DIR)

format:
	git ls-files '*.cc' '*.h' '*.cu' '*.cuh' '*.proto' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ENGINE_ONLY_DIR) $(FUZZ_DIR)
