"""memlens._native, the real tracker, driven from small scripts in subprocesses.

Each script runs in its own interpreter so that a crash in the hooks fails one test instead of
taking pytest down. Known allocations sit on lines marked `# @name`; the tests look those lines
up in the capture the tracker wrote.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from memlens import capture
from memlens.model import LineStats, Profile

MiB = 2**20
KiB = 2**10


@dataclass
class Script:
    path: Path
    capture: Path

    def line_of(self, marker: str) -> int:
        for number, text in enumerate(self.path.read_text().splitlines(), start=1):
            if text.rstrip().endswith(f"# @{marker}"):
                return number
        raise AssertionError(f"no line marked @{marker}")

    def line(self, profile: Profile, marker: str) -> LineStats:
        stats = profile.lines.line(str(self.path), self.line_of(marker))
        assert stats is not None, f"line @{marker} has no allocations in the capture"
        return stats

    def load(self) -> Profile:
        return capture.load(self.capture)


def write_script(tmp_path: Path, body: str) -> Script:
    path = tmp_path / "script.py"
    cap = tmp_path / "out.msgpack"
    header = f"import memlens._native as native\nCAPTURE = {str(cap)!r}\n"
    path.write_text(header + textwrap.dedent(body))
    return Script(path, cap)


def run(script: Script, *args: str, expect: int = 0, timeout: float = 60) -> str:
    done = subprocess.run(
        [sys.executable, str(script.path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=script.path.parent,
    )
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_start_stop_returns_a_valid_capture(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        import sys
        native.start(None, argv=["prog", "a b"], memlens_version="9.9")
        assert native.is_tracking()
        data = native.stop(exit_code=4)
        assert not native.is_tracking()
        sys.stdout.buffer.write(data)
        """,
    )
    done = subprocess.run([sys.executable, str(script.path)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    profile = capture.loads(done.stdout)
    assert profile.complete
    meta = profile.meta
    assert meta.argv == ["prog", "a b"]
    assert meta.memlens_version == "9.9"
    assert meta.python_version == platform.python_version()
    assert meta.platform == f"linux-{platform.machine()}"
    assert meta.python_allocators
    assert meta.exit_code == 4
    assert 0 < meta.start_ns <= meta.end_ns
    assert profile.threads[0] == "MainThread"
    assert not (tmp_path / "out.msgpack").exists()  # no output path: nothing written


def test_bytearray_peak_is_charged_to_its_line_and_function(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        def make_buffer():
            return bytearray(10 * 2**20)  # @alloc

        native.start(CAPTURE)
        buffer = make_buffer()  # @call
        native.stop()
        """,
    )
    run(script)
    profile = script.load()
    line = script.line(profile, "alloc")
    assert line.function == "make_buffer"
    assert abs(line.inclusive.peak_bytes - 10 * MiB) < KiB
    assert abs(line.self.peak_bytes_by_domain[0] - 10 * MiB) < KiB  # a Python object
    assert abs(line.self.leak_bytes - 10 * MiB) < KiB  # still alive at stop
    # The caller's line includes its callee's allocation.
    call = script.line(profile, "call")
    assert call.function == "<module>"
    assert abs(call.inclusive.peak_bytes - 10 * MiB) < KiB
    assert profile.totals.peak_bytes >= 10 * MiB


def test_numpy_allocations_are_charged_to_the_calling_line_in_any_thread(
    tmp_path: Path, numpy_data_domain: int
) -> None:
    script = write_script(
        tmp_path,
        """
        import threading
        import numpy as np

        def in_thread(keep):
            keep.append(np.zeros(100 * 2**20, dtype=np.uint8))  # @thread_zeros
            keep.append(np.ones(100 * 2**20, dtype=np.uint8))  # @thread_ones

        native.start(CAPTURE)
        zeros = np.zeros(100 * 2**20, dtype=np.uint8)  # @zeros
        ones = np.ones(100 * 2**20, dtype=np.uint8)  # @ones
        keep = []
        worker = threading.Thread(target=in_thread, args=(keep,))
        worker.start()
        worker.join()
        native.stop()
        """,
    )
    run(script)
    profile = script.load()
    for marker, function in [
        ("zeros", "<module>"),
        ("ones", "<module>"),
        ("thread_zeros", "in_thread"),
        ("thread_ones", "in_thread"),
    ]:
        line = script.line(profile, marker)
        assert line.function == function
        # numpy's data (calloc or PyMem_RawCalloc for zeros, malloc for ones); np.ones is Python
        # code in numpy, so the calling line's number is inclusive of numpy's frames.
        data_bytes = line.inclusive.peak_bytes_by_domain[numpy_data_domain]
        assert abs(data_bytes - 100 * MiB) < KiB, marker
    thread_rows = {
        int(t) for t, s in zip(profile.stats.thread, profile.stats.stack, strict=True) if s >= 0
    }
    assert len(thread_rows) == 2  # the main thread and the worker


def test_without_python_allocators_the_buffer_is_seen_as_malloc(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        native.start(CAPTURE, python_allocators=False)
        buffer = bytearray(10 * 2**20)  # @alloc
        small = [str(i) for i in range(1000)]
        native.stop()
        """,
    )
    run(script)
    profile = script.load()
    assert not profile.meta.python_allocators
    line = script.line(profile, "alloc")
    python, malloc, mmap = line.self.peak_bytes_by_domain
    assert python == 0 and mmap == 0
    assert abs(malloc - 10 * MiB) < KiB
    assert not profile.stats.domain.tolist().count(0)  # no Python-domain rows at all


def test_start_twice_and_stop_without_start_raise(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        try:
            native.stop()
        except RuntimeError as error:
            print("stop:", error)
        native.start(None)
        try:
            native.start(None)
        except RuntimeError as error:
            print("start:", error)
        assert native.is_tracking()  # the failed start did not disturb the running one
        native.stop()
        try:
            native.snapshot()
        except RuntimeError as error:
            print("snapshot:", error)
        """,
    )
    out = run(script)
    assert "stop: memlens is not tracking" in out
    assert "start: memlens is already tracking" in out
    assert "snapshot: memlens is not tracking" in out


def test_unwritable_output_raises_oserror_at_start(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        for path in ["/nonexistent-dir/x.msgpack", "."]:
            try:
                native.start(path)
            except OSError as error:
                print(type(error).__name__, error.errno)
        print("tracking:", native.is_tracking())
        """,
    )
    out = run(script)
    assert "FileNotFoundError 2" in out
    assert "IsADirectoryError 21" in out
    assert "tracking: False" in out


def test_a_failed_final_write_raises_with_the_capture_attached(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        import os
        from memlens import capture
        os.mkdir("gone")
        native.start("gone/x.msgpack", checkpoint_interval=0)
        data = bytearray(2**20)
        os.rmdir("gone")
        try:
            native.stop()
        except FileNotFoundError as error:
            print("peak", capture.loads(error.capture).totals.peak_bytes)
        print("tracking", native.is_tracking())
        """,
    )
    out = run(script).split()
    assert out[0] == "peak" and MiB <= int(out[1]) < MiB + 64 * KiB
    assert out[2:] == ["tracking", "False"]


def test_peak_in_the_middle_of_the_run(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        def small_phase():
            return [bytearray(1024) for _ in range(100)]

        def big_phase():
            big = bytearray(200 * 2**20)  # @big
            del big

        native.start(CAPTURE)
        before = small_phase()
        big_phase()  # @call_big
        after = small_phase()
        native.stop()
        """,
    )
    run(script)
    profile = script.load()
    assert profile.totals.peak_bytes >= 200 * MiB
    assert profile.totals.leak_bytes < MiB
    big = script.line(profile, "big")
    assert abs(big.self.peak_bytes - 200 * MiB) < KiB
    assert big.self.leak_bytes == 0
    assert big.self.alloc_bytes >= 200 * MiB
    assert abs(script.line(profile, "call_big").inclusive.peak_bytes - 200 * MiB) < 64 * KiB
    # The heaviest stack at the peak goes through the big line.
    top = profile.top_stacks("peak_bytes", 1)[0]
    assert any(f.line == script.line_of("big") for f in top.frames)


def test_allocations_after_stop_are_not_counted(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        from memlens import capture
        native.start(None)
        first = bytearray(3 * 2**20)  # @first
        one = capture.loads(native.stop())
        between = bytearray(50 * 2**20)  # @between
        native.start(None)
        del between  # freed while tracking, allocated before: ignored
        second = bytearray(7 * 2**20)  # @second
        two = capture.loads(native.stop())
        print(one.totals.alloc_bytes, one.totals.peak_bytes)
        print(two.totals.alloc_bytes, two.totals.peak_bytes, two.totals.leak_bytes)
        print(sorted({f.line for f in two.frames}))
        """,
    )
    out = run(script).split("\n")
    one_alloc, one_peak = map(int, out[0].split())
    two_alloc, two_peak, two_leak = map(int, out[1].split())
    assert 3 * MiB <= one_peak <= one_alloc < 3 * MiB + 64 * KiB
    assert 7 * MiB <= two_peak <= two_alloc < 7 * MiB + 64 * KiB
    assert 7 * MiB <= two_leak < 7 * MiB + 64 * KiB
    lines_seen = out[2]
    assert str(script.line_of("second")) in lines_seen
    assert str(script.line_of("between")) not in lines_seen


def test_realloc_chain_counts_every_step_and_the_final_size_once(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        def grow():
            items = []
            for i in range(100_000):
                items.append(None)  # @append
            return items

        native.start(CAPTURE)
        kept = grow()
        native.stop()
        """,
    )
    run(script)
    line = script.line(script.load(), "append")
    # CPython over-allocates by ~1/8: the final list holds 100,000 slots plus a little.
    assert 800_000 <= line.self.peak_bytes < 800_000 * 1.15
    assert line.self.peak_count == 1
    assert line.self.leak_bytes == line.self.peak_bytes
    assert line.self.alloc_count > 50  # every resize is an allocation
    assert line.self.alloc_bytes > 3 * line.self.peak_bytes  # the sum of the growing sizes


def test_temporaries_are_counted_for_build_and_drop(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        def churn():
            # Local names: storing and deleting them allocates nothing in between.
            for _ in range(500):
                scratch = bytearray(4000); del scratch  # @temp

        native.start(CAPTURE)
        churn()
        native.stop()
        """,
    )
    run(script)
    line = script.line(script.load(), "temp")
    # Each round: the object, then its 4,001-byte buffer, freed before any other allocation,
    # then the object, freed within 1 allocation (the default threshold, Memray's).
    assert line.self.temp_count == 1000
    assert line.self.temp_bytes == 500 * (4001 + 56)
    assert line.self.leak_bytes == 0


def test_four_threads_have_their_own_rows_and_exact_totals(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        import threading

        def work(size, keep):
            for i in range(200):
                keep[i] = bytearray(size)  # @work

        native.start(CAPTURE, python_allocators=False)
        keep = {size: [None] * 200 for size in (100_000, 200_000, 300_000, 400_000)}
        threads = [
            threading.Thread(target=work, args=(size, keep[size])) for size in keep
        ]
        for t in threads:
            t.start()
            native.set_thread_name(t.ident, f"worker-{t.name}")
        for t in threads:
            t.join()
        native.stop()
        """,
    )
    run(script)
    profile = script.load()
    work_line = script.line_of("work")
    per_thread: dict[int, int] = {}
    for row in range(len(profile.stats)):
        stack = int(profile.stats.stack[row])
        if stack < 0 or profile.frames_of(stack)[-1].line != work_line:
            continue
        thread = int(profile.stats.thread[row])
        per_thread[thread] = per_thread.get(thread, 0) + int(profile.stats.values[row, 5])
    # Each thread leaks exactly its 200 buffers (+1 byte each for bytearray's terminator).
    assert sorted(per_thread.values()) == [200 * (s + 1) for s in (1e5, 2e5, 3e5, 4e5)]
    names = {profile.threads[t] for t in per_thread}
    assert all(name.startswith("worker-") for name in names)
    assert len(names) == 4


def test_mmap_is_seen_and_munmap_releases_it(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        import mmap
        native.start(CAPTURE)
        region = mmap.mmap(-1, 64 * 2**20)  # @map
        region.close()
        native.stop()
        """,
    )
    run(script)
    profile = script.load()
    line = script.line(profile, "map")
    assert line.self.peak_bytes_by_domain[2] == 64 * MiB
    assert line.self.alloc_bytes_by_domain[2] == 64 * MiB
    assert line.self.leak_bytes < KiB  # only the small mmap object's leftovers, if any
    assert profile.totals.leak_bytes < MiB


def test_mmap_is_charged_the_length_asked_for_not_its_pages(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        import mmap
        native.start(CAPTURE)
        small = mmap.mmap(-1, 2048)  # @small
        odd = mmap.mmap(-1, 3 * 4096 + 100)  # @odd
        odd.close()
        native.stop()
        small.close()
        """,
    )
    run(script)
    profile = script.load()
    small = script.line(profile, "small").self
    odd = script.line(profile, "odd").self
    assert small.alloc_bytes_by_domain[2] == 2048  # one page mapped, 2,048 B asked for
    assert small.peak_bytes_by_domain[2] == 2048
    assert odd.alloc_bytes_by_domain[2] == 3 * 4096 + 100
    assert odd.peak_bytes_by_domain[2] == 3 * 4096 + 100
    # munmap of its 4 pages takes back exactly what was charged: only small is mapped at stop
    assert small.leak_bytes >= 2048 and odd.leak_bytes < KiB


def test_mremap_moves_the_mapping_to_the_resizing_line(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        import mmap
        native.start(CAPTURE)
        region = mmap.mmap(-1, 16 * 2**20)  # @map
        region.resize(32 * 2**20)  # @resize
        native.stop()
        region.close()
        """,
    )
    run(script)
    profile = script.load()
    mapped = script.line(profile, "map").self
    resized = script.line(profile, "resize").self
    assert mapped.alloc_bytes_by_domain[2] == 16 * MiB
    assert mapped.peak_bytes_by_domain[2] == 0  # remapped before the peak
    assert resized.alloc_bytes_by_domain[2] == 32 * MiB
    assert resized.leak_bytes == 32 * MiB
    assert 32 * MiB <= profile.totals.peak_bytes < 33 * MiB


def test_output_checkpoints_while_running_and_final_file_at_stop(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        import os, time
        native.start(CAPTURE, checkpoint_interval=0.05)
        data = bytearray(5 * 2**20)
        deadline = time.monotonic() + 10
        while not os.path.exists(CAPTURE + ".partial") and time.monotonic() < deadline:
            time.sleep(0.01)
        print("partial:", os.path.exists(CAPTURE + ".partial"))
        native.stop()
        print("after stop:", os.path.exists(CAPTURE + ".partial"), os.path.exists(CAPTURE))
        """,
    )
    out = run(script)
    assert "partial: True" in out
    assert "after stop: False True" in out
    profile = script.load()
    assert profile.complete
    assert len(profile.timeline.t_ms) >= 1
    assert profile.totals.rss_peak > 5 * MiB


@pytest.mark.no_memlens  # starts the tracker in this process
def test_relative_output_is_written_where_it_was_asked_after_chdir(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    script = write_script(
        tmp_path,
        """
        import os
        native.start("relative.msgpack", checkpoint_interval=0)
        os.chdir("elsewhere")
        native.stop()
        """,
    )
    run(script)
    assert (tmp_path / "relative.msgpack").exists()
    assert not (tmp_path / "elsewhere" / "relative.msgpack").exists()


def test_os_exit_writes_the_capture_with_the_exit_code(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        import os
        native.start(CAPTURE)
        data = bytearray(6 * 2**20)  # @alloc
        os._exit(3)
        """,
    )
    run(script, expect=3)
    profile = script.load()
    assert profile.complete
    assert profile.meta.exit_code == 3
    assert abs(script.line(profile, "alloc").self.leak_bytes - 6 * MiB) < KiB


def test_sigkill_leaves_the_last_checkpoint(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        import time
        native.start(CAPTURE, checkpoint_interval=0.05)
        data = bytearray(8 * 2**20)  # @alloc
        print("allocated", flush=True)
        time.sleep(60)
        """,
    )
    partial = Path(str(script.capture) + ".partial")
    argv = [sys.executable, str(script.path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "allocated\n"
            deadline = time.monotonic() + 10
            # Wait for a checkpoint written after the allocation.
            while time.monotonic() < deadline:
                if partial.exists() and capture.load(partial).totals.peak_bytes >= 8 * MiB:
                    break
                time.sleep(0.02)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert not script.capture.exists()
    profile = capture.load(partial)
    assert not profile.complete
    assert abs(script.line(profile, "alloc").self.peak_bytes - 8 * MiB) < KiB


@pytest.mark.parametrize("follow", [False, True])
def test_fork_child_tracking(tmp_path: Path, follow: bool) -> None:
    script = write_script(
        tmp_path,
        f"""
        import os
        native.start(CAPTURE, follow_fork={follow})
        parent_data = bytearray(4 * 2**20)  # @parent
        pid = os.fork()
        if pid == 0:
            child_data = bytearray(3 * 2**20)  # @child
            os._exit(5)
        _, status = os.waitpid(pid, 0)
        print(pid, os.waitstatus_to_exitcode(status))
        native.stop()
        """,
    )
    pid, child_exit = map(int, run(script).split())
    assert child_exit == 5
    parent = script.load()
    assert abs(script.line(parent, "parent").self.leak_bytes - 4 * MiB) < KiB
    assert parent.lines.line(str(script.path), script.line_of("child")) is None
    child_capture = Path(f"{script.capture}.{pid}")
    assert child_capture.exists() == follow
    if follow:
        child = capture.load(child_capture)
        assert child.meta.pid == pid and child.meta.exit_code == 5
        assert abs(script.line(child, "child").self.leak_bytes - 3 * MiB) < KiB
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["script.py", "out.msgpack"] + ([child_capture.name] if follow else [])
    )


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler")
def test_a_library_dlopens_a_plugin_along_its_own_runpath(tmp_path: Path) -> None:
    # The dlopen hook is the real dlopen's caller now; a bare name must still be searched along
    # the RUNPATH of the library that asked.
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugin.c").write_text("int plugin_value(void) { return 42; }\n")
    (tmp_path / "host.c").write_text(
        "#include <dlfcn.h>\n"
        "int call_plugin(void) {\n"
        '    void* h = dlopen("libmemlensplugin.so", RTLD_NOW);\n'
        "    if (!h) return -1;\n"
        '    int (*f)(void) = (int (*)(void))dlsym(h, "plugin_value");\n'
        "    return f ? f() : -2;\n"
        "}\n"
    )
    plugin = tmp_path / "plugins" / "libmemlensplugin.so"
    host = tmp_path / "libmemlenshost.so"
    compile_c = ["gcc", "-shared", "-fPIC", "-o"]
    subprocess.run([*compile_c, str(plugin), str(tmp_path / "plugin.c")], check=True)
    subprocess.run(
        [*compile_c, str(host), str(tmp_path / "host.c"), "-ldl"]
        + ["-Wl,-rpath,$ORIGIN/plugins", "-Wl,--enable-new-dtags"],
        check=True,
    )
    script = write_script(
        tmp_path,
        f"""
        import ctypes
        host = ctypes.CDLL({str(host)!r})
        native.start(None)
        print("tracked:", host.call_plugin())
        native.stop()
        """,
    )
    assert "tracked: 42" in run(script)


def test_common_modules_import_and_run_under_tracking(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        native.start(CAPTURE)
        import decimal, json, sqlite3, ssl
        import numpy as np
        db = sqlite3.connect(":memory:")
        db.execute("create table t (x)")
        db.executemany("insert into t values (?)", [(i,) for i in range(1000)])
        assert db.execute("select sum(x) from t").fetchone()[0] == 499500
        assert json.loads(json.dumps({"a": [1, 2]})) == {"a": [1, 2]}
        assert str(decimal.Decimal(1) / 7)[:5] == "0.142"
        ssl.create_default_context()
        assert float(np.arange(10).sum()) == 45.0
        native.stop()
        print("ok")
        """,
    )
    assert run(script).strip() == "ok"
    profile = script.load()
    assert profile.totals.alloc_count > 1000
    assert profile.totals.leak_bytes <= profile.totals.peak_bytes


def test_subprocess_with_a_failing_exec_does_not_stop_tracking(tmp_path: Path) -> None:
    # subprocess uses vfork: the child shares the parent's memory and calls _exit(255) when
    # exec fails, through the hooked _exit.
    script = write_script(
        tmp_path,
        """
        import subprocess
        native.start(CAPTURE)
        try:
            subprocess.run(["/nonexistent-memlens-binary"])
        except FileNotFoundError:
            pass
        subprocess.run(["true"], check=True)
        print("tracking:", native.is_tracking())
        data = bytearray(2 * 2**20)  # @after
        native.stop()
        """,
    )
    assert "tracking: True" in run(script)
    profile = script.load()
    assert abs(script.line(profile, "after").self.leak_bytes - 2 * MiB) < KiB


def test_code_objects_reused_at_the_same_address_keep_their_own_lines(tmp_path: Path) -> None:
    # The same bytecode on different lines, compiled and dropped in turn: the second code
    # object gets the first one's memory, so caches keyed by code address must notice that the
    # first one died, or every allocation lands on line 1.
    script = write_script(
        tmp_path,
        """
        sources = ["b = bytearray(1000)\\n", "\\nb = bytearray(2000)\\n"]
        native.start(CAPTURE)
        for i in range(200):
            exec(compile(sources[i // 100], "<generated>", "exec"), {})
        native.stop()
        """,
    )
    run(script)
    profile = script.load()
    first, second = (profile.lines.line("<generated>", n) for n in (1, 2))
    assert first is not None and second is not None
    # Counted as temporaries (each freed at the next allocation): the interpreter may add a
    # one-off allocation of its own that it keeps (3.10 with some packages installed: 48 bytes).
    assert first.self.temp_count == second.self.temp_count == 200  # object + buffer, x100
    object_size = (first.self.temp_bytes - 100 * 1001) // 100  # the bytearray object itself
    assert 40 <= object_size <= 80
    assert first.self.temp_bytes == 100 * (1001 + object_size)
    assert second.self.temp_bytes == 100 * (2001 + object_size)
