# Side-by-side benchmarks: memlens vs Memray vs tracemalloc (bench/run.py). Not part of `make test`.
.PHONY: bench

bench: build ## time bench workloads unprofiled, under memlens, Memray and tracemalloc (~3 min)
	$(PY) bench/run.py
