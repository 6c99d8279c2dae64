# pipebridge — the two commands:
#   make run    install what is missing, build, start the server (127.0.0.1:4010, SQLite in ./data;
#               the web console at http://127.0.0.1:4010/console/)
#   make test   install what is missing, build, run every test (CTest)
# Also: make build, make asan (ASan+UBSan build and its tests), make bench, make clean.

BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: run test build asan bench clean deps deps-test

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Starts the server on the embedded default: SQLite in ./data, 127.0.0.1:4010.
run: build
	@echo "pipebridge: web console at http://127.0.0.1:4010/console/ (sign in with test / test on a new ./data)"
	@$(BUILD)/pipebridge serve --listen 127.0.0.1:4010 --data-dir ./data

test: deps-test
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps-test
	@cmake -S . -B $(ASAN_BUILD) -DPB_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L 'unit|conformance|fuzz|cli|e2e'

bench: build
	@$(BUILD)/pattern_bench
	@$(BUILD)/pipeline_bench $(BUILD)/pipebridge
	@$(BUILD)/ingest_bench $(BUILD)/pipebridge
	@$(BUILD)/schedule_bench

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
