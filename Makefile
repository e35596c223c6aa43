# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
KEEL_RELEASE := .build/release/keel

.PHONY: setup build release test demo clean

setup:
	@tools/setup.sh

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

## Builds everything and runs the whole suite (unit, kernel, ONNX conformance, CLI end to end).
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build 2>&1 | tee .build/test.log | grep -Ev '^(Test Case .* (started|passed)|\[[0-9]+/[0-9]+\])' ; \
	  status=$${PIPESTATUS[0]}; \
	  grep -h '^conformance' .build/test.log || true; \
	  exit $$status

## Builds release and runs the main job on the bundled default graph.
demo: release
	tools/demo.sh $(KEEL_RELEASE)

clean:
	rm -rf .build
