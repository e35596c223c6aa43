# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
KEEL_RELEASE := .build/release/keel

.PHONY: setup build release test demo clean fuzz

setup:
	@tools/setup.sh

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

## Builds everything and runs the whole suite (unit, kernels vs ONNX Runtime, ONNX conformance, CLI end to end),
## then prints the conformance table and one closing line: "tests: N passed, M failed".
test: setup
	$(SWIFT) build --build-tests
	@set -o pipefail; \
	$(SWIFT) test --skip-build --disable-swift-testing 2>&1 | tee .build/test.log \
	  | grep -Ev '^(Test Case .* (started|passed)|conformance)'; \
	status=$$?; \
	grep -h '^conformance' .build/test.log || true; \
	summary=$$(grep -E 'Executed [0-9]+ tests?, with' .build/test.log | tail -1); \
	total=$$(grep -oE 'Executed [0-9]+' <<<"$$summary" | grep -oE '[0-9]+'); \
	failed=$$(grep -oE '[0-9]+ failures?' <<<"$$summary" | grep -oE '[0-9]+'); \
	skipped=$$(grep -oE '[0-9]+ tests? skipped' <<<"$$summary" | grep -oE '[0-9]+'); \
	echo "tests: $$(( $${total:-0} - $${failed:-0} - $${skipped:-0} )) passed, $${failed:-0} failed$${skipped:+, $$skipped skipped}"; \
	exit $$status

## libFuzzer over the .keel, .npy, ONNX, .keelc and image readers, SECONDS each (one at a time;
## crash inputs land in Fuzz/Crashes/, which `make test` replays). Needs clang's libFuzzer.
SECONDS ?= 60
fuzz: setup
	tools/fuzz.sh $(SECONDS)

## Builds release and runs the main job on the bundled default graph.
demo: release
	tools/demo.sh $(KEEL_RELEASE)

clean:
	rm -rf .build
