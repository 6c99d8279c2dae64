# pipebridge — the two commands:
#   make run    install what is missing, build, start pipebridge
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

# Until the server exists, `make run` shows what the program does today and
# answers a sample TestEventPattern call with the real engine.
run: build
	@$(BUILD)/pipebridge help
	@echo
	@echo '$$ pipebridge test-event-pattern --event-pattern file://tests/data/sample-pattern.json --event file://tests/data/sample-event.json'
	@$(BUILD)/pipebridge test-event-pattern --event-pattern file://tests/data/sample-pattern.json --event file://tests/data/sample-event.json

test: deps-test
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps-test
	@cmake -S . -B $(ASAN_BUILD) -DPB_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L 'unit|conformance|fuzz'

bench: build
	@$(BUILD)/pattern_bench

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
