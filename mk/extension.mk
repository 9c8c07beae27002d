# The VS Code extension (vscode-extension/) and its end-to-end test in a real VS Code (tests/e2e/).
EXT_DIR     := vscode-extension
EXT_VERSION := $(shell node -p "require('./$(EXT_DIR)/package.json').version" 2>/dev/null || echo 0.0.0)
EXT_VSIX    := $(EXT_DIR)/memlens-$(EXT_VERSION).vsix
EXT_SRC     := $(wildcard $(EXT_DIR)/src/*.ts) $(EXT_DIR)/package.json $(EXT_DIR)/esbuild.mjs $(EXT_DIR)/.vscodeignore $(wildcard $(EXT_DIR)/media/*)
# No install script is needed (esbuild's binary is an optional package); skipping them keeps
# keytar & co. from trying to download prebuilt binaries.
EXT_NPM_CI  := npm ci --ignore-scripts --no-fund --no-audit

.PHONY: extension test-extension test-e2e

$(EXT_DIR)/node_modules/.memlens-ci: $(EXT_DIR)/package-lock.json
	cd $(EXT_DIR) && $(EXT_NPM_CI)
	@touch $@

$(EXT_VSIX): $(EXT_DIR)/node_modules/.memlens-ci $(EXT_SRC)
	cd $(EXT_DIR) && npx --no-install vsce package --no-dependencies --out memlens-$(EXT_VERSION).vsix </dev/null

extension: $(EXT_VSIX) ## package the VS Code extension (.vsix, offline)

test-extension: $(EXT_DIR)/node_modules/.memlens-ci ## extension: typecheck, lint, unit tests
	cd $(EXT_DIR) && npm run -s typecheck && npm run -s lint && npm test

test-e2e: build extension ## extension in a real VS Code (code-server + headless chromium)
	bash tests/e2e/setup.sh
	bash tests/e2e/run.sh $(abspath $(EXT_VSIX)) $(abspath $(PY))

# test-e2e passes from a fresh clone with a cold cache (about 75 s; 21 s once installs are cached).
TEST_TARGETS += test-extension test-e2e
