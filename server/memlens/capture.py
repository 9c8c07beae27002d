"""Reading memlens capture files (msgpack, format versions 1 and 2). The tracker writes them
(native/writer.cpp); the test suite's writer (tests/support/capture_writer.py) is this reader's
inverse.

A capture is one msgpack map (see DESIGN.md, "Capture file"). Columnar arrays keep it small:
its size grows with the number of distinct stacks, not with the number of allocations.

Captures are files people share, so the reader trusts nothing in them:
- it opens only regular files (a FIFO, a device or a directory is refused before any read) and
  reads at most MAX_CAPTURE_BYTES, counting while it reads (st_size of /dev/zero is 0);
- a compressed body (COMPRESSED_PREFIX, then one zlib stream) inflates incrementally to at most
  MAX_CAPTURE_BYTES too, and a corrupt, truncated or overlong stream is refused;
- the msgpack decoder is bounded (string, list and map lengths, nesting) and map keys must be
  strings, so no list or map key and no huge preallocation reaches Python;
- every field has its type checked (columns are lists of ints of the table's length, strings
  are str; bytes that are not UTF-8 show as U+FFFD, so a foreign file name still reads) and
  every number its range: references point inside their tables; counts and bytes
  are not negative and their sums fit in int64; no peak exceeds what was allocated; the peak and
  the timeline fall inside the run; frame lines are below MAX_LINE.

Conventions the reader checks:
- `stacks` nodes are in creation order: a node's parent comes before it (`parent[n] < n`, -1 for
  a root), so the trie has no cycles.
- `totals.peak_ns` and `timeline.t_ms` count from the start of tracking; `meta.start_ns` and
  `meta.end_ns` are wall-clock nanoseconds since the epoch.
- `stats.domain` is 0 for Python objects (the PyMem/PyObject allocators), 1 for the malloc
  family, 2 for mmap; `stats.thread` is one of `threads.id`.
- Each stats row's peak, leaked and temporary counts and bytes are at most its allocated ones,
  and the rows add up to at most the run's totals (the tracker writes them equal).
- `sizes` and `allocators` are optional (captures older than them have neither). `sizes` has at
  most one entry per (domain, bucket_log2), bucket_log2 in [-1, 63] (-1: 0-byte requests), and
  each entry's bytes fit its bucket (count * 2**k <= bytes <= count * (2**(k+1) - 1));
  `allocators.name` are distinct strings. Each table adds up to at most the run's totals.

Anything malformed (truncated, foreign, newer, inconsistent) raises `CaptureError` with a
one-line message; nothing here ever returns a half-read profile.
"""

from __future__ import annotations

import os
import stat
import zlib
from dataclasses import replace
from typing import Any

import msgpack
import numpy as np

from memlens import measures, origins
from memlens.files import one_line, reason
from memlens.measures import STATS_COLUMNS
from memlens.model import AllocatorUse, Frame, Meta, Profile, SizeHistogram, Stats, Timeline, Totals
from memlens.snapshots import ROOTS, Holder, HolderStep, ObjectGroup, Snapshot

MAGIC = "memlens-capture"
VERSION = 2  # the newest this reads; version 1 is read too
# Version 2 stores these columns as differences from the previous entry (the first from 0):
# each is close to its predecessor, so the numbers are small and compress ~5x better.
DELTA_COLUMNS = {("frames", "line"), ("stacks", "frame"), ("stats", "stack")}
# ... and each trie node's parent as its distance back (node - parent; node + 1 for a root):
# mostly 1, as a child usually follows its parent.
GAP_COLUMNS = {("stacks", "parent")}
PLAIN_VERSION = 1  # every column as it is (the test suite's writer writes this)
# The tracker writes the msgpack body as one zlib stream after this prefix (native/writer.h);
# a bare msgpack body (captures written before compression) still reads.
COMPRESSED_PREFIX = b"memlens-capture+zlib\n"
# A capture holds aggregates, not events: even huge programs stay far below this. The cap keeps
# a foreign multi-gigabyte file from being read into memory.
MAX_CAPTURE_BYTES = 1 << 30
# Decoder bounds, far above what the tracker writes (it keeps under 2**24 stats rows).
MAX_STRING_BYTES = 1 << 24  # one string or binary; argv may hold a whole `-c` program
MAX_LIST_ITEMS = 1 << 25
MAX_MAP_ITEMS = 1 << 10  # the widest map has a dozen keys
# No source file has a million lines; a bigger number would make reports build huge ranges
# (`memlens lines` on a file without its source walks every line up to the last one).
MAX_LINE = 1_000_000
INT64_MAX = 2**63 - 1
# Snapshots are few and their holders short (the tracker gives ~10 holders of a few steps each).
MAX_SNAPSHOTS = 4096
MAX_HOLDERS = 1024
MAX_HOLDER_STEPS = 64
_READ_CHUNK = 1 << 20


class CaptureError(Exception):
    """A capture that cannot be read; the message names the file and the problem (one line)."""


def load(path: str | os.PathLike[str]) -> Profile:
    """Read a capture file into a Profile."""
    source = one_line(os.fspath(path))
    return loads(_read_regular_file(os.fspath(path), source), source=source)


def _read_regular_file(path: str, source: str) -> bytes:
    """The file's bytes, at most MAX_CAPTURE_BYTES of them, if it is a regular file."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not wait; it is refused just below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CaptureError(f"{source}: no such capture file") from None
    except PermissionError:
        raise CaptureError(f"{source}: permission denied") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL in the name
        raise CaptureError(f"{source}: cannot open: {reason(error)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise CaptureError(f"{source}: is a directory, not a capture file")
        if not stat.S_ISREG(mode):
            raise CaptureError(f"{source}: is {_file_kind(mode)}, not a capture file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CAPTURE_BYTES:  # the file's size is counted, never trusted
            chunk = os.read(fd, min(_READ_CHUNK, MAX_CAPTURE_BYTES + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        raise CaptureError(
            f"{source}: more than {MAX_CAPTURE_BYTES} bytes is too large for a memlens capture"
        )
    except OSError as error:
        raise CaptureError(f"{source}: cannot read: {reason(error)}") from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def loads(data: bytes, source: str = "capture") -> Profile:
    """Parse capture bytes (a file's content, or what the tracker returns in memory)."""
    if not data:
        raise CaptureError(f"{source}: empty file, not a memlens capture")
    if len(data) > MAX_CAPTURE_BYTES:
        raise CaptureError(f"{source}: {len(data)} bytes is too large for a memlens capture")
    data = body(data, source)
    try:
        # unpackb decodes in place (Unpacker.feed would copy); the data is already bounded,
        # so these limits play the part of Unpacker's max_buffer_size.
        raw = msgpack.unpackb(
            data,
            raw=False,
            unicode_errors="replace",  # a file name that is not UTF-8 still shows
            strict_map_key=True,
            max_str_len=MAX_STRING_BYTES,
            max_bin_len=MAX_STRING_BYTES,
            max_ext_len=MAX_STRING_BYTES,
            max_array_len=MAX_LIST_ITEMS,
            max_map_len=MAX_MAP_ITEMS,
        )
    except msgpack.ExtraData:
        if _looks_like_capture(data):
            raise CaptureError(
                f"{source}: trailing bytes after the capture (corrupt file)"
            ) from None
        raise CaptureError(f"{source}: not a memlens capture") from None
    except msgpack.StackError:
        raise CaptureError(f"{source}: not a memlens capture: nested too deeply") from None
    except MemoryError:
        raise CaptureError(f"{source}: too large to decode in the memory available") from None
    except (ValueError, msgpack.UnpackException) as error:
        if not _looks_like_capture(data):
            raise CaptureError(f"{source}: not a memlens capture") from None
        raise CaptureError(f"{source}: {_decode_problem(str(error))}") from None
    return from_dict(raw, source=source)


def body(data: bytes, source: str = "capture") -> bytes:
    """The msgpack body of capture bytes: inflated if compressed, never over MAX_CAPTURE_BYTES."""
    if not data.startswith(COMPRESSED_PREFIX):
        return data
    stream = memoryview(data)[len(COMPRESSED_PREFIX) :]  # no copy of the stream
    # A few KiB of zeros inflate to gigabytes: max_length stops inflating past the cap.
    inflater = zlib.decompressobj()
    try:
        inflated = inflater.decompress(stream, MAX_CAPTURE_BYTES + 1)
    except zlib.error:
        raise CaptureError(
            f"{source}: corrupt capture: its compressed body does not inflate"
        ) from None
    except MemoryError:
        raise CaptureError(f"{source}: too large to decode in the memory available") from None
    if len(inflated) > MAX_CAPTURE_BYTES:
        raise CaptureError(
            f"{source}: inflates to more than {MAX_CAPTURE_BYTES} bytes, too large for a memlens"
            " capture"
        )
    if not inflater.eof:
        raise CaptureError(f"{source}: truncated or corrupt capture")  # as a bare one cut short
    if inflater.unused_data:
        raise CaptureError(f"{source}: trailing bytes after the capture (corrupt file)")
    return inflated


def _decode_problem(message: str) -> str:
    """msgpack's complaint about a capture, in the reader's words."""
    if "map key" in message:
        return "corrupt capture: a map key is not a string"
    if "exceeds max_" in message:
        return "corrupt capture: a string, list or map is longer than any capture's"
    return "truncated or corrupt capture"


def _looks_like_capture(data: bytes) -> bool:
    return MAGIC.encode() in data[:64]


# --- dict <-> Profile -------------------------------------------------------------------------


class _Reader:
    """Typed, range-checked access to the raw map, naming the field in every error."""

    def __init__(self, source: str, version: int = VERSION) -> None:
        self.source = source
        self.version = version

    def fail(self, what: str) -> CaptureError:
        return CaptureError(f"{self.source}: corrupt capture: {what}")

    def table(self, raw: dict[str, Any], key: str) -> dict[str, Any]:
        value = raw.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"missing or malformed '{key}'")
        return value

    def ints(self, table: dict[str, Any], name: str, key: str, length: int | None) -> np.ndarray:
        """A column: a list of int64 (no bool, float or str), `length` long if given."""
        column = table.get(key)
        # set(map(type, ...)) runs in C: about as fast as the conversion that follows
        if not isinstance(column, list) or (column and set(map(type, column)) != {int}):
            raise self.fail(f"'{name}.{key}' is not a list of integers")
        if length is not None and len(column) != length:
            raise self.fail(f"'{name}.{key}' has {len(column)} entries, expected {length}")
        try:
            values = np.array(column, dtype=np.int64)
        except OverflowError:
            raise self.fail(f"'{name}.{key}' has an integer out of range") from None
        if self.version >= 2 and (name, key) in DELTA_COLUMNS:
            # a hostile sum may wrap around: the range checks that follow judge the result
            return np.cumsum(values, dtype=np.int64)
        if self.version >= 2 and (name, key) in GAP_COLUMNS:
            return np.arange(len(values), dtype=np.int64) - values
        return values

    def integer(self, table: dict[str, Any], name: str, low: int, high: int = INT64_MAX) -> int:
        """A single int in [low, high], the whole of `name` (`table.key`) naming it."""
        value = table.get(name.rpartition(".")[2])
        if type(value) is not int:
            raise self.fail(f"'{name}' is not an integer")
        if not low <= value <= high:
            raise self.fail(f"'{name}' is {value}, outside [{low}, {high}]")
        return value

    def strings(self, table: dict[str, Any], name: str) -> list[str]:
        strings = table.get(name.rpartition(".")[2])
        if not isinstance(strings, list) or (strings and set(map(type, strings)) != {str}):
            raise self.fail(f"'{name}' is not a list of strings")
        return strings

    def in_range(self, column: np.ndarray, name: str, low: int, high: int) -> None:
        """Every value in [low, high): references into a table of `high` entries."""
        if column.size and (column.min() < low or column.max() >= high):
            raise self.fail(f"'{name}' refers outside [{low}, {high})")

    def bounded(self, column: np.ndarray, name: str, low: int, high: int) -> None:
        """Every value in [low, high]: quantities."""
        if column.size and (column.min() < low or column.max() > high):
            raise self.fail(f"'{name}' has a value outside [{low}, {high}]")


def _column_sums(values: np.ndarray) -> list[int]:
    """Exact sums of the columns of a non-negative int64 table, as Python ints (no wrap-around):
    the high and low 32 bits are summed apart, which cannot overflow below 2**31 rows."""
    high = (values >> 32).sum(axis=0, dtype=np.int64).tolist()
    low = (values & 0xFFFFFFFF).sum(axis=0, dtype=np.int64).tolist()
    return [(h << 32) + lo for h, lo in zip(high, low, strict=True)]


def from_dict(raw: Any, source: str = "capture") -> Profile:
    """Validate a decoded capture map and build the Profile."""
    if not isinstance(raw, dict) or raw.get("magic") != MAGIC:
        raise CaptureError(f"{source}: not a memlens capture")
    version = raw.get("version")
    if type(version) is not int:
        raise CaptureError(f"{source}: corrupt capture: no format version")
    if version > VERSION:
        raise CaptureError(
            f"{source}: capture format version {version} is newer than this memlens reads "
            f"(version {VERSION}); upgrade memlens"
        )
    if version < 1:
        raise CaptureError(f"{source}: unknown capture format version {version}")
    r = _Reader(source, version)
    complete = raw.get("complete")
    if not isinstance(complete, bool):
        raise r.fail("'complete' is not a boolean")
    meta = _meta(r, raw.get("meta"))
    strings = r.strings(raw, "strings")
    frames = _frames(r, r.table(raw, "frames"), strings)
    parent, frame = _stacks(r, r.table(raw, "stacks"), len(frames))
    threads = _threads(r, r.table(raw, "threads"), strings)
    stats = _stats(r, r.table(raw, "stats"), len(parent), threads)
    totals = _totals(r, r.table(raw, "totals"), stats, meta)
    timeline = _timeline(r, r.table(raw, "timeline"), totals, meta)
    sizes = _sizes(r, r.table(raw, "sizes"), totals) if "sizes" in raw else None
    allocators = (
        _allocators(r, r.table(raw, "allocators"), strings, totals) if "allocators" in raw else None
    )

    snapshots = _snapshots(r, raw.get("snapshots", []), strings, len(parent), meta, stats)

    frames, parent, frame, node_map = _without_launcher(frames, parent, frame)
    stack = _map_stacks(stats.stack, node_map)
    return Profile(
        complete=complete,
        meta=meta,
        frames=frames,
        stack_parent=parent,
        stack_frame=frame,
        stats=Stats(stack=stack, thread=stats.thread, domain=stats.domain, values=stats.values),
        totals=totals,
        timeline=timeline,
        threads=threads,
        snapshots=tuple(_map_snapshot(s, node_map) for s in snapshots),
        sizes=sizes,
        allocators=allocators,
    )


def _frames(r: _Reader, table: dict[str, Any], strings: list[str]) -> list[Frame]:
    line = r.ints(table, "frames", "line", None)
    n_frames = len(line)
    function = r.ints(table, "frames", "function", n_frames)
    file = r.ints(table, "frames", "file", n_frames)
    first_line = r.ints(table, "frames", "first_line", n_frames)
    r.in_range(function, "frames.function", 0, len(strings))
    r.in_range(file, "frames.file", 0, len(strings))
    r.bounded(line, "frames.line", 0, MAX_LINE)
    r.bounded(first_line, "frames.first_line", 0, MAX_LINE)
    columns = ([strings[f] for f in function.tolist()], [strings[p] for p in file.tolist()])
    return list(map(Frame._make, zip(*columns, line.tolist(), first_line.tolist(), strict=True)))


def _stacks(r: _Reader, table: dict[str, Any], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    parent = r.ints(table, "stacks", "parent", None)
    n_nodes = len(parent)
    frame = r.ints(table, "stacks", "frame", n_nodes)
    r.in_range(frame, "stacks.frame", 0, n_frames)
    # parents before children: every walk up the trie ends at a root, no cycle is possible
    if n_nodes and not (np.all(parent >= -1) and np.all(parent < np.arange(n_nodes))):
        raise r.fail("'stacks.parent' must refer to an earlier node or be -1")
    return parent, frame


def _threads(r: _Reader, table: dict[str, Any], strings: list[str]) -> dict[int, str]:
    ids = r.ints(table, "threads", "id", None)
    names = r.ints(table, "threads", "name", len(ids))
    r.bounded(ids, "threads.id", 0, INT64_MAX)
    r.in_range(names, "threads.name", 0, len(strings))
    if len(np.unique(ids)) != len(ids):
        raise r.fail("'threads.id' names a thread twice")
    return {i: strings[n] for i, n in zip(ids.tolist(), names.tolist(), strict=True)}


# Per stats row, a part can be no more than the whole: (part, whole) columns of measures.COLUMNS.
_PARTS = [
    (measures.COLUMNS.index(part), measures.COLUMNS.index(whole))
    for part, whole in (
        ("peak_count", "alloc_count"),
        ("leak_count", "alloc_count"),
        ("temp_count", "alloc_count"),
        ("peak_bytes", "alloc_bytes"),
        ("leak_bytes", "alloc_bytes"),
        ("temp_bytes", "alloc_bytes"),
    )
]


def _stats(r: _Reader, table: dict[str, Any], n_nodes: int, threads: dict[int, str]) -> Stats:
    stack = r.ints(table, "stats", "stack", None)
    n_rows = len(stack)
    thread = r.ints(table, "stats", "thread", n_rows)
    domain = r.ints(table, "stats", "domain", n_rows)
    values = np.zeros((n_rows, len(measures.COLUMNS)), dtype=np.int64)  # ref columns: _referenced
    for column, metric in enumerate(STATS_COLUMNS):
        values[:, column] = r.ints(table, "stats", metric, n_rows)
    # -1 is allowed: an allocation made with no Python frame on its thread's stack.
    r.in_range(stack, "stats.stack", -1, n_nodes)
    r.in_range(domain, "stats.domain", 0, 3)
    if n_rows and not np.isin(thread, np.fromiter(threads, np.int64, len(threads))).all():
        raise r.fail("'stats.thread' refers to a thread not in 'threads'")
    if values.size and values.min() < 0:
        raise r.fail("'stats' has a negative count or size")
    for part, whole in _PARTS:
        if n_rows and np.any(values[:, part] > values[:, whole]):
            raise r.fail(
                f"'stats.{measures.COLUMNS[part]}' exceeds 'stats.{measures.COLUMNS[whole]}'"
            )
    return Stats(stack=stack, thread=thread, domain=domain, values=values)


# Totals the stats rows add up to (at most: the tracker writes them equal).
_ROW_SUMS = ("alloc_count", "alloc_bytes", "peak_bytes", "leak_bytes")


def _totals(r: _Reader, table: dict[str, Any], stats: Stats, meta: Meta) -> Totals:
    totals = Totals(
        alloc_count=r.integer(table, "totals.alloc_count", 0),
        alloc_bytes=r.integer(table, "totals.alloc_bytes", 0),
        peak_bytes=r.integer(table, "totals.peak_bytes", 0),
        peak_ns=r.integer(table, "totals.peak_ns", 0, _run_ns(meta)),
        leak_bytes=r.integer(table, "totals.leak_bytes", 0),
        rss_peak=r.integer(table, "totals.rss_peak", 0),
    )
    if totals.peak_bytes > totals.alloc_bytes:
        raise r.fail("'totals.peak_bytes' exceeds 'totals.alloc_bytes'")
    if totals.leak_bytes > totals.peak_bytes:
        raise r.fail("'totals.leak_bytes' exceeds 'totals.peak_bytes'")
    sums = dict(zip(measures.COLUMNS, _column_sums(stats.values), strict=True))
    for metric, total in sums.items():
        if total > INT64_MAX:
            raise r.fail(f"'stats.{metric}' adds up to more than 64 bits hold")
    for metric in _ROW_SUMS:
        if sums[metric] > getattr(totals, metric):
            raise r.fail(f"'stats.{metric}' adds up to more than 'totals.{metric}'")
    return totals


# One entry per (domain, bucket): 3 domains, 0-byte requests and 64 power-of-two buckets.
_SIZE_CELLS = 3 * 65


def _sizes(r: _Reader, table: dict[str, Any], totals: Totals) -> SizeHistogram:
    domain = r.ints(table, "sizes", "domain", None)
    if len(domain) > _SIZE_CELLS:
        raise r.fail(f"'sizes' has {len(domain)} entries, more than {_SIZE_CELLS}")
    bucket = r.ints(table, "sizes", "bucket_log2", len(domain))
    count = r.ints(table, "sizes", "count", len(domain))
    size = r.ints(table, "sizes", "bytes", len(domain))
    r.in_range(domain, "sizes.domain", 0, 3)
    r.in_range(bucket, "sizes.bucket_log2", -1, 64)
    r.bounded(count, "sizes.count", 0, INT64_MAX)
    r.bounded(size, "sizes.bytes", 0, INT64_MAX)
    if len(set(zip(domain.tolist(), bucket.tolist(), strict=True))) != len(domain):
        raise r.fail("'sizes' has a (domain, bucket_log2) twice")
    for k, n, b in zip(bucket.tolist(), count.tolist(), size.tolist(), strict=True):
        low, high = (0, 0) if k < 0 else (n << k, n * ((2 << k) - 1))  # Python ints: exact
        if not low <= b <= high:
            raise r.fail(f"'sizes.bytes' is {b} for {n} allocations in bucket_log2 {k}")
    _at_most_totals(r, "sizes", count.tolist(), size.tolist(), totals)
    return SizeHistogram(domain=domain, bucket_log2=bucket, count=count, bytes=size)


def _allocators(
    r: _Reader, table: dict[str, Any], strings: list[str], totals: Totals
) -> list[AllocatorUse]:
    name = r.ints(table, "allocators", "name", None)
    if len(name) > MAX_MAP_ITEMS:
        raise r.fail(f"'allocators' has {len(name)} entries, more than {MAX_MAP_ITEMS}")
    count = r.ints(table, "allocators", "count", len(name))
    size = r.ints(table, "allocators", "bytes", len(name))
    r.in_range(name, "allocators.name", 0, len(strings))
    r.bounded(count, "allocators.count", 0, INT64_MAX)
    r.bounded(size, "allocators.bytes", 0, INT64_MAX)
    names = [strings[i] for i in name.tolist()]
    if len(set(names)) != len(names):
        raise r.fail("'allocators.name' names an allocator twice")
    _at_most_totals(r, "allocators", count.tolist(), size.tolist(), totals)
    return [
        AllocatorUse(n, c, b) for n, c, b in zip(names, count.tolist(), size.tolist(), strict=True)
    ]


def _at_most_totals(
    r: _Reader, name: str, count: list[int], size: list[int], totals: Totals
) -> None:
    """A table of counts and bytes adds up to at most the run's (the tracker writes them equal)."""
    if sum(count) > totals.alloc_count:
        raise r.fail(f"'{name}.count' adds up to more than 'totals.alloc_count'")
    if sum(size) > totals.alloc_bytes:
        raise r.fail(f"'{name}.bytes' adds up to more than 'totals.alloc_bytes'")


def _run_ns(meta: Meta) -> int:
    """How long the run lasted, with slack: the times in a capture come from the monotonic
    clock, the run's start and end from the wall clock, which may have been slewed."""
    duration = meta.end_ns - meta.start_ns
    return duration + duration // 1000 + 1_000_000


def _timeline(r: _Reader, table: dict[str, Any], totals: Totals, meta: Meta) -> Timeline:
    t_ms = r.ints(table, "timeline", "t_ms", None)
    heap = r.ints(table, "timeline", "heap", len(t_ms))
    rss = r.ints(table, "timeline", "rss", len(t_ms))
    r.bounded(t_ms, "timeline.t_ms", 0, _run_ns(meta) // 1_000_000)
    if np.any(np.diff(t_ms) < 0):
        raise r.fail("'timeline.t_ms' goes back in time")
    r.bounded(heap, "timeline.heap", 0, totals.peak_bytes)
    r.bounded(rss, "timeline.rss", 0, totals.rss_peak)
    return Timeline(t_ms=t_ms, heap=heap, rss=rss)


def _snapshots(
    r: _Reader, raw: Any, strings: list[str], n_nodes: int, meta: Meta, stats: Stats
) -> list[Snapshot]:
    """The optional `snapshots` list (absent in older captures)."""
    if not isinstance(raw, list) or len(raw) > MAX_SNAPSHOTS:
        raise r.fail(f"'snapshots' is not a list of at most {MAX_SNAPSHOTS} snapshots")
    run_ms = _run_ns(meta) // 1_000_000
    snapshots = []
    for item in raw:
        if not isinstance(item, dict):
            raise r.fail("a snapshot is not a map")
        label = item.get("label")
        complete = item.get("complete")
        if not isinstance(label, str) or not isinstance(complete, bool):
            raise r.fail("a snapshot's 'label' or 'complete' is malformed")
        objects = _object_groups(r, r.table(item, "objects"), strings, n_nodes)
        snapshots.append(
            Snapshot(
                label=label,
                t_ms=r.integer(item, "snapshots.t_ms", 0, run_ms),
                objects=objects,
                holders=_holders(r, item.get("holders"), strings, n_nodes),
                complete=complete,
                referenced_complete=_referenced(r, item, stats) if "referenced" in item else None,
            )
        )
    return snapshots


_REF = measures.COLUMNS.index("ref_count")
_LEAK = measures.COLUMNS.index("leak_count")


def _referenced(r: _Reader, snapshot: dict[str, Any], stats: Stats) -> bool:
    """The exit snapshot's `referenced` rows, checked and folded into the stats' ref columns
    (each at most its row's leak); whether the marking was complete."""
    table = r.table(snapshot, "referenced")
    complete = table.get("complete")
    if not isinstance(complete, bool):
        raise r.fail("'snapshots.referenced.complete' is not a boolean")
    row = r.ints(table, "snapshots.referenced", "row", None)
    count = r.ints(table, "snapshots.referenced", "count", len(row))
    size = r.ints(table, "snapshots.referenced", "bytes", len(row))
    r.in_range(row, "snapshots.referenced.row", 0, len(stats))
    if len(row) > 1 and not np.all(np.diff(row) > 0):
        raise r.fail("'snapshots.referenced.row' is not increasing (a row twice?)")
    marked = np.stack([count, size], axis=1)
    r.bounded(marked, "snapshots.referenced", 0, INT64_MAX)
    if np.any(marked > stats.values[row, _LEAK : _LEAK + 2]):
        raise r.fail("'snapshots.referenced' exceeds its row's leak_count or leak_bytes")
    stats.values[:, _REF : _REF + 2] = 0  # the last snapshot that marked is the one kept
    stats.values[row, _REF : _REF + 2] = marked
    return complete


def _object_groups(
    r: _Reader, table: dict[str, Any], strings: list[str], n_nodes: int
) -> tuple[ObjectGroup, ...]:
    types = r.ints(table, "snapshots.objects", "type", None)
    stacks = r.ints(table, "snapshots.objects", "stack", len(types))
    counts = r.ints(table, "snapshots.objects", "count", len(types))
    sizes = r.ints(table, "snapshots.objects", "bytes", len(types))
    r.in_range(types, "snapshots.objects.type", 0, len(strings))
    r.in_range(stacks, "snapshots.objects.stack", -1, n_nodes)
    r.bounded(counts, "snapshots.objects.count", 0, INT64_MAX)
    r.bounded(sizes, "snapshots.objects.bytes", 0, INT64_MAX)
    if sum(_column_sums(sizes.reshape(-1, 1))) > INT64_MAX:
        raise r.fail("'snapshots.objects.bytes' adds up to more than int64")
    return tuple(
        ObjectGroup(strings[t], s, c, b)
        for t, s, c, b in zip(
            types.tolist(), stacks.tolist(), counts.tolist(), sizes.tolist(), strict=True
        )
    )


def _holders(r: _Reader, raw: Any, strings: list[str], n_nodes: int) -> tuple[Holder, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_HOLDERS:
        raise r.fail(f"'snapshots.holders' is not a list of at most {MAX_HOLDERS} holders")
    holders = []
    for item in raw:
        if not isinstance(item, dict):
            raise r.fail("a holder is not a map")
        root = item.get("root")
        if root not in ROOTS:
            raise r.fail(f"a holder's 'root' is not one of {', '.join(ROOTS)}")
        steps = item.get("steps")
        if not isinstance(steps, list) or len(steps) > MAX_HOLDER_STEPS:
            raise r.fail(f"a holder's 'steps' is not a list of at most {MAX_HOLDER_STEPS}")
        holders.append(
            Holder(
                type=strings[r.integer(item, "snapshots.holders.type", 0, len(strings) - 1)],
                stack=r.integer(item, "snapshots.holders.stack", -1, n_nodes - 1),
                count=r.integer(item, "snapshots.holders.count", 0),
                bytes=r.integer(item, "snapshots.holders.bytes", 0),
                root=root,
                steps=tuple(_holder_step(r, step, strings, n_nodes) for step in steps),
            )
        )
    return tuple(holders)


def _holder_step(r: _Reader, raw: Any, strings: list[str], n_nodes: int) -> HolderStep:
    if not isinstance(raw, dict):
        raise r.fail("a holder step is not a map")
    return HolderStep(
        text=strings[r.integer(raw, "snapshots.holders.steps.text", 0, len(strings) - 1)],
        stack=r.integer(raw, "snapshots.holders.steps.stack", -1, n_nodes - 1),
    )


def _map_snapshot(snapshot: Snapshot, node_map: np.ndarray | None) -> Snapshot:
    """A snapshot with its stack ids through _without_launcher's map."""
    if node_map is None:
        return snapshot

    def new(stack: int) -> int:
        return -1 if stack < 0 else int(node_map[stack])

    return replace(
        snapshot,
        objects=tuple(replace(g, stack=new(g.stack)) for g in snapshot.objects),
        holders=tuple(
            replace(
                h,
                stack=new(h.stack),
                steps=tuple(replace(step, stack=new(step.stack)) for step in h.steps),
            )
            for h in snapshot.holders
        ),
    )


# The frames of `memlens run` itself (and of runpy under `python -m memlens run`) sit below the
# script's `<module>` in every stack. They are ours, not the user's: dropped when they form the
# root of a stack. The user's own runpy calls deeper down are kept.
def _without_launcher(
    frames: list[Frame], parent: np.ndarray, frame: np.ndarray
) -> tuple[list[Frame], np.ndarray, np.ndarray, np.ndarray | None]:
    """Drop root frames of the launcher. Returns the kept frames and trie, and each old node's
    new id (-1: dropped, so what the launcher alone allocated gets stack -1), None if none was."""
    by_file = {file: origins.is_launcher(file) for file in {f.file for f in frames}}
    launcher = np.array([by_file[f.file] for f in frames], dtype=bool)
    if not launcher.any() or not len(parent):
        return frames, parent, frame, None
    dropped = np.zeros(len(parent), dtype=bool)
    for node in np.flatnonzero(launcher[frame]).tolist():  # parents come first: one pass
        up = int(parent[node])
        dropped[node] = up < 0 or bool(dropped[up])
    if not dropped.any():
        return frames, parent, frame, None
    node_map = np.where(dropped, -1, np.cumsum(~dropped) - 1).astype(np.int64)
    kept = ~dropped
    new_parent = _map_stacks(parent[kept], node_map)
    # Frames no kept node uses go too, so no report lists the launcher's lines.
    kept_frame = frame[kept]
    used = np.zeros(len(frames), dtype=bool)
    used[kept_frame] = True
    frame_index = np.cumsum(used) - 1
    kept_frames = [f for f, keep in zip(frames, used.tolist(), strict=True) if keep]
    return kept_frames, new_parent, frame_index[kept_frame], node_map


def _map_stacks(stack: np.ndarray, node_map: np.ndarray | None) -> np.ndarray:
    """Stack ids through _without_launcher's map (-1 stays -1)."""
    if node_map is None:
        return stack
    return np.where(stack < 0, -1, node_map[np.maximum(stack, 0)]).astype(np.int64)


def _meta(r: _Reader, raw: Any) -> Meta:
    if not isinstance(raw, dict):
        raise r.fail("missing or malformed 'meta'")
    argv = r.strings(raw, "meta.argv") if "argv" in raw else []

    def integer(key: str, low: int, high: int = INT64_MAX) -> int:
        return r.integer(raw, f"meta.{key}", low, high) if key in raw else low

    def text(key: str) -> str:
        value = raw.get(key, "")
        if not isinstance(value, str):
            raise r.fail(f"'meta.{key}' is not a string")
        return value

    def flag(key: str) -> bool:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            raise r.fail(f"'meta.{key}' is not a boolean")
        return value

    flag("native_traces")  # written by the tracker, always false: checked, not kept
    start_ns = integer("start_ns", 0)
    end_ns = integer("end_ns", start_ns)  # the run ends after it starts (missing: at once)
    return Meta(
        argv=list(argv),
        pid=integer("pid", 0),
        python_version=text("python_version"),
        platform=text("platform"),
        memlens_version=text("memlens_version"),
        start_ns=start_ns,
        end_ns=end_ns,
        python_allocators=flag("python_allocators"),
        temporary_threshold=(
            integer("temporary_threshold", 0, 64) if "temporary_threshold" in raw else 1
        ),
        # an exit status, or minus the signal that ended the run
        exit_code=integer("exit_code", -(2**31), 2**31 - 1) if "exit_code" in raw else None,
    )
