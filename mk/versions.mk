# Every supported CPython (3.10-3.13): the interpreter-facing tiers on each, and a wheel per version.
SUPPORTED_PYTHONS := 3.10 3.11 3.12 3.13
.PHONY: test-versions wheels test-wheels

test-versions: build chromium ## native, plugin, reports, LSP and attach tiers on every other CPython 3.10-3.13 found
	bash scripts/test-versions.sh $(PY) $(SUPPORTED_PYTHONS)

wheels: build ## a manylinux wheel per CPython found (dist/), each installed offline and smoke-tested
	bash scripts/build-wheels.sh $(PY) $(SUPPORTED_PYTHONS)

test-wheels: wheels

TEST_TARGETS += test-versions test-wheels
