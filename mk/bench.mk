# Side-by-side benchmarks: memlens vs Memray vs tracemalloc (bench/run.py). Not part of `make test`.
.PHONY: bench

bench: build ## bench workloads unprofiled and under memlens, Memray, tracemalloc, per CPython (~20 min)
	bash scripts/bench-versions.sh $(PY) $(BENCH_ARGS)

.PHONY: bench-lsp
bench-lsp: build ## language server latency: capture load -> diagnostics, inlay hints (10,000 stacks)
	$(PY) bench/lsp_latency.py

bench: bench-lsp

.PHONY: bench-attach
bench-attach: build gdb ## attach: time to tracking and first checkpoint, slowdown vs memlens run, memray attach
	$(PY) bench/attach.py

bench: bench-attach
