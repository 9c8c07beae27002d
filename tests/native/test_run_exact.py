"""`python -m memlens run` on scripts with known allocations: exact numbers per line.

The scripts live in scripts/; their known allocations sit on lines marked `# @name`. Each script
runs once per module (in a subprocess, under the real tracker) and the tests read its capture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from run_helpers import line_of, memlens_run

from memlens import capture
from memlens.model import LineStats, Profile

SCRIPTS = Path(__file__).parent / "scripts"
MiB = 2**20
KiB = 2**10


def function_name(qualname: str) -> str:
    """A function as captures name it: 3.10's code objects have no co_qualname, only co_name."""
    return qualname if sys.version_info >= (3, 11) else qualname.rsplit(".", 1)[-1]


def frame_object_bytes(script: Path, function: str) -> int:
    """What a call to `function` allocates for its frame: a heap object on 3.10 only (which the
    code object then keeps for its next call), made by the caller's line."""
    if sys.version_info >= (3, 11):
        return 0
    (code,) = (
        const
        for const in compile(script.read_text(), str(script), "exec").co_consts
        if getattr(const, "co_name", None) == function
    )
    frame_type = type(sys._getframe())
    slots = code.co_stacksize + code.co_nlocals + len(code.co_cellvars) + len(code.co_freevars)
    gc_header = 16  # PyGC_Head: two pointers
    return frame_type.__basicsize__ + frame_type.__itemsize__ * slots + gc_header


class Run:
    """A script's capture and what it printed."""

    def __init__(self, script: Path, profile: Profile, stdout: str) -> None:
        self.script, self.profile, self.stdout = script, profile, stdout

    def line(self, marker: str) -> LineStats:
        stats = self.profile.lines.line(str(self.script), line_of(self.script, marker))
        assert stats is not None, f"line @{marker} has no allocations in the capture"
        return stats

    def printed(self, key: str) -> list[int]:
        for text in self.stdout.splitlines():
            name, *values = text.split()
            if name == key:
                return [int(v) for v in values]
        raise AssertionError(f"the script printed no {key!r}")


def run_script(name: str, tmp_path: Path, *options: str) -> Run:
    script = SCRIPTS / name
    output = tmp_path / f"{script.stem}.msgpack"
    done = memlens_run("-o", str(output), *options, str(script), cwd=tmp_path)
    profile = capture.load(output)
    peak = profile.totals.peak_bytes
    assert done.stderr.endswith(f"memlens: wrote {output} (peak {format_peak(peak)})\n")
    return Run(script, profile, done.stdout)


def format_peak(n: int) -> str:
    from memlens.units import format_bytes

    return format_bytes(n)


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_script("exact_allocations.py", tmp_path_factory.mktemp("exact"))


@pytest.fixture(scope="module")
def numpy_threads(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_script("numpy_threads.py", tmp_path_factory.mktemp("numpy"))


@pytest.fixture(scope="module")
def peak_mmap(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_script("peak_mmap.py", tmp_path_factory.mktemp("peak"))


def test_bytearray_line_holds_10_mib_at_peak_in_its_function(exact: Run) -> None:
    line = exact.line("buffer")
    assert line.function == "make_buffer"
    # 10 MiB of data, the terminating NUL and the 56-byte object header
    assert line.self.peak_bytes == 10 * MiB + 1 + 56
    assert line.self.peak_bytes_by_domain == (10 * MiB + 57, 0, 0)
    assert line.self.peak_count == 2
    # The calling line includes it; the capture knows the script's argv and a clean exit.
    call = exact.line("call_buffer")
    assert call.function == "<module>"
    frame_bytes = frame_object_bytes(exact.script, "make_buffer")
    assert call.inclusive.peak_bytes == 10 * MiB + 57 + frame_bytes
    assert call.self.peak_bytes == frame_bytes
    assert exact.profile.complete and exact.profile.meta.exit_code == 0
    assert exact.profile.meta.argv == [str(exact.script)]


def test_list_grown_by_append_counts_every_realloc_and_the_final_size_once(exact: Run) -> None:
    sizes = exact.printed("list_sizes")  # every size the item array took, from sys.getsizeof
    line = exact.line("append")
    assert line.function == "grow_list"
    assert line.self.alloc_count == len(sizes) == 66
    assert line.self.alloc_bytes == sum(sizes)
    assert line.self.peak_bytes == sizes[-1] == 800_928
    assert line.self.peak_count == 1
    assert line.self.leak_bytes == sizes[-1]


def test_class_attribute_cache_is_reported_as_leaked_at_its_line(exact: Run) -> None:
    (entry_size,) = exact.printed("bytearray_65536")
    line = exact.line("leak")
    assert line.function == function_name("Cache.remember")
    assert line.self.leak_count == 400  # 200 objects and their buffers
    assert line.self.leak_bytes == 200 * entry_size == 13_118_600
    assert line.self.alloc_bytes == line.self.leak_bytes
    assert line.self.temp_count == 0


def test_build_and_drop_loop_is_counted_as_temporary(exact: Run) -> None:
    (chunk_size,) = exact.printed("bytes_10000")
    line = exact.line("temp")
    assert line.function == "churn"
    assert line.self.temp_count == line.self.alloc_count
    assert line.self.leak_bytes == 0 and line.self.peak_bytes == 0
    assert 1000 * chunk_size == 10_033_000
    if sys.version_info >= (3, 11):
        assert line.self.alloc_count == 1000
        assert line.self.temp_bytes == 10_033_000
    else:
        # Open question: once in two runs on a loaded machine, 3.10 charged one more temporary
        # block of 58 B to this line (1,001 allocations, 10,033,058 B). The 1,000 chunks are
        # always there; what the extra block is, is not known yet.
        extra = (line.self.alloc_count - 1000, line.self.temp_bytes - 10_033_000)
        assert extra == (0, 0) or (extra[0] == 1 and 0 < extra[1] <= 64), extra


@pytest.mark.parametrize(
    ("marker", "function"),
    [
        ("zeros", "<module>"),  # calloc
        ("ones", "<module>"),  # malloc, then filled
        ("worker_zeros", "in_worker"),
        ("worker_ones", "in_worker"),
    ],
)
def test_numpy_arrays_are_charged_to_the_calling_line(
    numpy_threads: Run, marker: str, function: str, numpy_data_domain: int
) -> None:
    line = numpy_threads.line(marker)
    assert line.function == function
    python, native, mmap = line.inclusive.peak_bytes_by_domain
    assert mmap == 0
    if numpy_data_domain == 1:
        assert abs(native - 100 * MiB) <= 1
        assert python < KiB  # the array object itself
        assert line.inclusive.alloc_bytes_by_domain[1] == native
    else:  # the data and the array object, both Python allocators'
        assert 100 * MiB <= python < 100 * MiB + KiB and native == 0


def test_allocation_without_the_gil_is_charged_to_the_worker_line(numpy_threads: Run) -> None:
    # sqlite3_step runs with the GIL released and builds the 50 MiB blob with malloc.
    line = numpy_threads.line("worker_nogil")
    assert line.function == "in_worker"
    native = line.inclusive.alloc_bytes_by_domain[1]
    assert 50 * MiB <= native < 50 * MiB + 64 * KiB
    worker = {t for t, name in numpy_threads.profile.threads.items() if name == "numpy-worker"}
    assert len(worker) == 1
    stacks = numpy_threads.profile.lines.stacks_through(
        str(numpy_threads.script), line_of(numpy_threads.script, "worker_nogil"), "alloc_bytes"
    )
    stats = numpy_threads.profile.stats
    assert stacks and set(stats.thread[stats.stack == stacks[0].stack_id].tolist()) == worker


def test_four_threads_have_their_own_stacks_names_and_exact_totals(numpy_threads: Run) -> None:
    profile = numpy_threads.profile
    work_line = line_of(numpy_threads.script, "work")
    leaked: dict[str, int] = {}
    for row in range(len(profile.stats)):
        stack = int(profile.stats.stack[row])
        frames = profile.frames_of(stack) if stack >= 0 else ()
        if not frames or (frames[-1].file, frames[-1].line) != (
            str(numpy_threads.script),
            work_line,
        ):
            continue
        name = profile.threads[int(profile.stats.thread[row])]
        leaked[name] = leaked.get(name, 0) + int(profile.stats.values[row, 5])  # leak_bytes
        # A worker's stack starts in threading's bootstrap, not in the main thread's frames.
        assert [f.function for f in frames[-3:]] == [function_name("Thread.run"), "run", "work"]
        assert frames[0].function == function_name("Thread._bootstrap")
    # 200 bytearrays each: the data, its NUL and the 56-byte object
    assert leaked == {f"worker-{n}": 200 * (n * 100_000 + 57) for n in (1, 2, 3, 4)}
    line = numpy_threads.line("work")
    assert line.self.alloc_count == 4 * 400
    assert line.self.leak_bytes == sum(leaked.values()) == 200_045_600


def test_peak_in_the_middle_goes_through_the_big_line(peak_mmap: Run) -> None:
    profile = peak_mmap.profile
    big = peak_mmap.line("big")
    assert big.function == "big_phase"
    assert 200 * MiB + 57 <= big.self.peak_bytes < 200 * MiB + KiB
    assert big.self.leak_bytes == 0
    # the buffer, freed before anything else, and its object right after (threshold 1)
    assert big.self.temp_bytes == 200 * MiB + 1 + 56
    call_big = peak_mmap.line("call_big").inclusive.peak_bytes
    assert 200 * MiB + 57 <= call_big < 200 * MiB + KiB
    # At the peak: the big buffer and the first small phase (5 x 1 MiB), nothing more to speak of
    small = 5 * (MiB + 57)
    assert 200 * MiB + small <= profile.totals.peak_bytes < 200 * MiB + small + MiB
    top = profile.top_stacks("peak_bytes", 1)[0]
    assert (top.frames[-1].file, top.frames[-1].line) == (
        str(peak_mmap.script),
        line_of(peak_mmap.script, "big"),
    )
    # At the end only the second small phase is still alive.
    assert small <= profile.totals.leak_bytes < small + MiB
    # (plus the list that holds them)
    assert small <= peak_mmap.line("small").self.leak_bytes < small + KiB


def test_mmap_of_64_mib_is_seen_and_munmap_frees_it(peak_mmap: Run) -> None:
    line = peak_mmap.line("map")
    assert line.function == "map_region"
    assert line.self.alloc_bytes_by_domain[2] == 64 * MiB
    assert line.self.leak_bytes < KiB  # the mapping is gone; at most the mmap object's bits
    # the mapping came after the 200 MiB peak, so it is not part of it
    assert line.self.peak_bytes_by_domain[2] == 0


def test_common_native_modules_work_under_the_tracker(
    tmp_path: Path, numpy_data_domain: int
) -> None:
    run = run_script("common_imports.py", tmp_path)
    assert run.stdout == "ok\n"
    assert run.profile.complete and run.profile.meta.exit_code == 0
    assert run.profile.totals.alloc_count > 10_000
    # the 8 MB matrix is charged to the script
    assert run.line("matrix").self.alloc_bytes_by_domain[numpy_data_domain] >= 8_000_000


def test_names_outside_ascii_and_two_lines_of_one_function_are_exact(tmp_path: Path) -> None:
    # The first new position of a code object reads its names (UTF-8 from any str kind), the
    # next ones reuse them: both lines must still carry the right function, file and line.
    script = tmp_path / "größen_π.py"
    script.write_text(
        "def größe_λ():\n"
        "    first = bytearray(300_000)  # @first\n"
        "    second = bytearray(500_000)  # @second\n"
        "    return first, second\n"
        "\n"
        "kept = größe_λ()\n"
    )
    output = tmp_path / "names.msgpack"
    memlens_run("-o", str(output), str(script), cwd=tmp_path)
    run = Run(script, capture.load(output), "")
    for marker, size in (("first", 300_000), ("second", 500_000)):
        line = run.line(marker)
        assert line.function == "größe_λ"
        assert line.self.leak_bytes == size + 1 + 56  # the data, its NUL, the object header
    files = {frame.file for frame in run.profile.frames if frame.function == "größe_λ"}
    assert files == {str(script)}
