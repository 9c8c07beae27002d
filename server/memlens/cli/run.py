"""`memlens run`: run a Python program like `python` would, under the tracker, and write a capture.

    memlens run [-o CAP] [--no-python-allocators] [--follow-fork] [--checkpoint-interval S]
                (script.py | -m module | -c code) [args...]

The program sees what `python` would give it: `sys.argv`, `__name__ == "__main__"`, `sys.path[0]`,
the modules loaded at start (none of memlens's), and memlens ends with the program's own exit
code, or dies of the signal python would die of (KeyboardInterrupt, SIGTERM). The capture is
written however the program ends (return, exception, `sys.exit`, `os._exit` through the native
`_exit` hook, SIGINT, SIGTERM); SIGKILL leaves `CAP.partial`, an exec nothing past the last
checkpoint (it needs a native hook). Everything that can be checked is checked before tracking
starts, so bad input costs nothing: a one-line error and exit code 2.
"""

from __future__ import annotations

# Only what python itself has loaded when a script starts (and what memlens.tracker needs): the
# program must start with the modules it would have under python (test_run_like_python).
import _signal
import os
import sys
import types
from types import CodeType, TracebackType

from memlens.cli import CliError

TYPE_CHECKING = False  # not typing's: importing typing loads a dozen modules python has not
if TYPE_CHECKING:
    from typing import NoReturn, TextIO

    from memlens.tracker import Tracker

USAGE = """\
usage: memlens run [-o CAP] [--no-python-allocators] [--follow-fork] [--checkpoint-interval S]
                   [--live] (script.py | -m module | -c code) [args...]

Run a Python program under the memlens tracker and write a capture.

options (before the program; everything after it belongs to the program):
  -o, --output CAP         capture file (default: memlens-<script>.<pid>.msgpack here)
  --no-python-allocators   track only malloc/mmap, not Python objects (fastest)
  --follow-fork            keep tracking in forked children (each writes CAP.<pid>)
  --checkpoint-interval S  write CAP.partial every S seconds (e.g. 1, 0.5s, 250ms; 0 = never)
  --temporary-allocation-threshold N
                           a block freed within N allocations of its thread is temporary
                           (0-64; default 1, as Memray's)
  --live                   a terminal view while it runs (q stops the program, keeps CAP)
  -h, --help               show this help"""


class Options:
    # A plain class, not a dataclass: importing dataclasses (and inspect) is 5 ms of start-up.
    def __init__(self) -> None:
        self.output: str | None = None
        self.python_allocators = True
        self.follow_fork = False
        self.checkpoint_interval = 1.0
        self.temporary_threshold = 1
        self.kind = ""  # "script", "module" or "code"
        self.target = ""  # the script's path, the module's name or the code
        self.args: list[str] = []
        self.live = False


def parse_args(argv: list[str]) -> Options | None:
    """Options up to the program; None for --help."""
    options = Options()
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        name = arg.partition("=")[0] if arg.startswith("--") else arg
        if arg in ("-h", "--help"):
            return None
        if name in ("-o", "--output"):
            options.output = option_value(arg, rest)
            if not options.output:
                raise CliError("--output needs a file name")
        elif arg == "--no-python-allocators":
            options.python_allocators = False
        elif arg == "--follow-fork":
            options.follow_fork = True
        elif arg == "--live":
            options.live = True
        elif name == "--checkpoint-interval":
            options.checkpoint_interval = parse_interval(option_value(arg, rest))
        elif name == "--temporary-allocation-threshold":
            options.temporary_threshold = parse_threshold(option_value(arg, rest))
        elif arg in ("-m", "-c"):
            if not rest:
                raise CliError(f"{arg} needs {'a module name' if arg == '-m' else 'code'}")
            options.kind = "module" if arg == "-m" else "code"
            options.target, options.args = rest[0], rest[1:]
            return options
        elif arg.startswith("-m") or arg.startswith("-c"):  # -mpkg, -c'code' as python allows
            options.kind = "module" if arg[1] == "m" else "code"
            options.target, options.args = arg[2:], rest
            return options
        elif arg == "--":
            if not rest:
                break
            options.kind, options.target, options.args = "script", rest[0], rest[1:]
            return options
        elif arg.startswith("-") and arg != "-":
            raise CliError(f"unknown option {arg!r} (options go before the script)")
        else:
            options.kind, options.target, options.args = "script", arg, rest
            return options
    raise CliError("no program to run: give script.py, -m module or -c code")


def option_value(arg: str, rest: list[str]) -> str:
    """The value of `--name=value`, or of `--name value` (taken from rest)."""
    name, equals, value = arg.partition("=")
    if equals and arg.startswith("--"):
        return value
    if not rest:
        raise CliError(f"{name} needs a value")
    return rest.pop(0)


def parse_threshold(text: str) -> int:
    if not text.strip().isdigit() or int(text) > 64:
        raise CliError(f"invalid --temporary-allocation-threshold {text!r}: give 0 to 64")
    return int(text)


def parse_interval(text: str) -> float:
    """Seconds from '1', '0.5s' or '250ms'."""
    number, scale = text.strip(), 1.0
    if number.endswith("ms"):
        number, scale = number[:-2], 0.001
    elif number.endswith("s"):
        number = number[:-1]
    try:
        seconds = float(number) * scale
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):  # also false for nan
        raise CliError(
            f"invalid --checkpoint-interval {text!r}: give seconds >= 0 (e.g. 1, 0.5s, 250ms)"
        )
    return seconds


# --- the program ------------------------------------------------------------------------------


class Program:
    """What to run, prepared (and checked) before tracking starts."""

    # A plain class, not a NamedTuple: typing is not loaded when python starts a program.
    def __init__(
        self,
        *,
        name: str,  # for the default capture name
        argv: list[str],  # the program's sys.argv
        path0: str,  # the program's sys.path[0]
        code: CodeType,  # compiled: a syntax error is found before anything starts
        globals: dict[str, object],  # the __main__ module's attributes besides __name__
    ) -> None:
        self.name = name
        self.argv = argv
        self.path0 = path0
        self.code = code
        self.globals = globals


def prepare(options: Options) -> Program:
    if options.kind == "code":
        return Program(
            name="c",
            argv=["-c", *options.args],
            path0="",
            code=compile_source(options.target, "<string>"),
            globals={},
        )
    if options.kind == "module":
        return prepare_module(options)
    if not os.path.exists(options.target):
        raise CliError(f"{options.target}: no such file")
    if os.path.isdir(options.target):
        raise CliError(f"{options.target}: is a directory, not a Python script")
    try:
        with open(options.target, "rb") as script:
            source = script.read()
    except OSError as error:
        raise CliError(f"{options.target}: cannot read: {error.strerror or error}") from None
    # Python 3.9+ gives __main__ an absolute __file__, and sys.path[0] the script's real dir.
    file = os.path.abspath(options.target)
    return Program(
        name=os.path.splitext(os.path.basename(file))[0] or "script",
        argv=[options.target, *options.args],
        path0=os.path.dirname(os.path.realpath(file)),
        code=compile_source(source, file),
        globals={"__file__": file, "__cached__": None},
    )


def prepare_module(options: Options) -> Program:
    """`-m name` as python runs it: the module (a package's __main__) as __main__."""
    import importlib.util

    name = options.target
    # python -m puts the cwd first before it looks the module up
    sys.path[0] = os.getcwd()
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(f"{name}.__main__")
            if spec is None:
                raise CliError(f"{name} is a package and cannot be directly executed")
        if spec is None:
            raise CliError(f"no module named {name!r}")
        get_code = getattr(spec.loader, "get_code", None)
        code = get_code(spec.name) if get_code is not None else None
    except SyntaxError as error:
        raise CliError(f"{error.filename}:{error.lineno}: SyntaxError: {error.msg}") from None
    except (ImportError, ValueError) as error:
        raise CliError(f"cannot run module {name!r}: {error}") from None
    if code is None:
        raise CliError(f"cannot run module {name!r}: it has no Python code")
    return Program(
        name=name.rpartition(".")[2],
        argv=[spec.origin or name, *options.args],
        path0=os.getcwd(),
        code=code,
        globals={
            "__file__": spec.origin,
            "__cached__": spec.cached,
            "__package__": spec.parent,
            "__loader__": spec.loader,
            "__spec__": spec,
        },
    )


def compile_source(source: str | bytes, filename: str) -> CodeType:
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as error:
        where = f"{error.filename or filename}:{error.lineno}" if error.lineno else filename
        raise CliError(f"{where}: {type(error).__name__}: {error.msg}") from None
    except (ValueError, UnicodeDecodeError) as error:  # null bytes, bad encoding
        raise CliError(f"{filename}: cannot compile: {error}") from None


def check_output(output: str) -> None:
    if os.path.isdir(output):
        raise CliError(f"{output}: is a directory; give a capture file name")
    folder = os.path.dirname(output) or "."
    if not os.path.isdir(folder):
        raise CliError(f"{output}: directory {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"{output}: directory {folder!r} is not writable")


# --- running ----------------------------------------------------------------------------------


def execute(program: Program) -> int:
    """Run the program as __main__; its exit code, with errors reported as python would."""
    try:
        # A fresh __main__ that stays in sys.modules, as with python: its globals live to the end.
        main = types.ModuleType("__main__")
        main.__dict__.update(program.globals, __builtins__=__builtins__)
        sys.modules["__main__"] = main
        exec(program.code, main.__dict__)
        wait_for_threads()
        return 0
    except SystemExit as done:
        return exit_code_of(done)
    except KeyboardInterrupt as error:
        report(error)
        return -2  # SIGINT: python dies of it once the traceback is printed
    except BaseException as error:
        report(error)
        return 1


def wait_for_threads() -> None:
    """Python waits for non-daemon threads before exiting; so do we, while still tracking."""
    import threading  # loaded by then: memlens.tracker uses it

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()


def exit_code_of(done: SystemExit) -> int:
    """The process exit code python gives `sys.exit(code)`."""
    if done.code is None:
        return 0
    if isinstance(done.code, int):
        return done.code & 0xFF
    print(done.code, file=sys.stderr)
    return 1


def report(error: BaseException) -> None:
    """Print the traceback like python, starting at the program's own frames."""
    traceback = error.__traceback__
    while traceback is not None and is_ours(traceback):
        traceback = traceback.tb_next
    # The default hook prints the exception's own __traceback__, not the argument.
    sys.excepthook(type(error), error.with_traceback(traceback), traceback)


def is_ours(traceback: TracebackType) -> bool:
    return traceback.tb_frame.f_code.co_filename == __file__


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    if options is None:
        print(USAGE)
        return 0
    program = prepare(options)
    output = options.output or f"memlens-{program.name}.{os.getpid()}.msgpack"
    check_output(output)
    if options.live:  # the program runs in a child `memlens run`; this process is the view
        from memlens.cli.live import run_live

        return run_live(argv, output)

    from memlens.tracker import Tracker

    tracker = Tracker(
        output,
        python_allocators=options.python_allocators,
        follow_fork=options.follow_fork,
        checkpoint_interval=options.checkpoint_interval,
        temporary_threshold=options.temporary_threshold,
        argv=program.argv,
        focus=program.code,  # stacks begin at the program's own first frame: none of ours
    )
    sys.argv = list(program.argv)
    sys.path[0] = program.path0
    try:
        tracker.start()
    except OSError as error:
        raise CliError(f"{output}: cannot write: {error.strerror or error}") from None
    ending = FinishOnSigterm(tracker, program.name, forget_own_modules())
    exit_code = execute(program)
    flush(sys.stdout)
    written = ending.finish(exit_code)
    if exit_code < 0:  # the program died of a signal (KeyboardInterrupt): so does memlens run
        run_exit_handlers()
        die_of(-exit_code)
    return exit_code if written else exit_code or 2


def forget_own_modules() -> dict[str, types.ModuleType]:
    """Take memlens's modules out of sys.modules while the program runs; they are returned.

    The program sees only what it would under python: pytest would otherwise warn "Module
    already imported so cannot be rewritten; memlens", and an `import memlens` of its own (the
    pytest plugin) loads it afresh. A fresh `memlens._native` shares the C++ tracker's state, which
    is process-wide. run.py and the Tracker keep working on the modules they already hold.
    """
    names = [name for name in sys.modules if name == "memlens" or name.startswith("memlens.")]
    return {name: sys.modules.pop(name) for name in names}


def finish(tracker: Tracker, exit_code: int, name: str, ours: dict[str, types.ModuleType]) -> bool:
    """Stop tracking and write the capture; False if it could not be written where asked."""
    # Tracker.stop imports memlens lazily: give it ours back (or the program's, if it has some)
    # rather than import it again while tracking.
    for module_name, module in ours.items():
        sys.modules.setdefault(module_name, module)
    try:
        written = tracker.stop(exit_code)
    except OSError as error:
        # The output went away during the run: keep the capture somewhere rather than lose it.
        saved = save_elsewhere(tracker.capture_bytes, name)
        print(
            f"memlens run: error: {tracker.output_path}: cannot write: {error.strerror or error}"
            + (f"; capture saved as {saved}" if saved else ""),
            file=sys.stderr,
        )
        return False
    if written is not None:
        peak = format_peak()
        print(f"memlens: wrote {tracker.output_path} (peak {peak})", file=sys.stderr)
    return True


class FinishOnSigterm:
    """On SIGTERM write the complete capture, then die of SIGTERM as the program would have.

    Only when the program would die of it (SIGTERM at its default). A Python-level handler, so
    the program can observe it: `signal.getsignal(SIGTERM)` returns it instead of SIG_DFL, and it
    runs between the main thread's bytecodes (a long C call delays the death until it returns).
    A program that sets its own handler replaces it, as it would the default. Forked children
    inherit it, so a followed child (--follow-fork) writes its CAP.<pid>; a child that is not
    followed just dies. `_signal`, not `signal`: that one imports enum, which python has not.
    """

    def __init__(self, tracker: Tracker, name: str, ours: dict[str, types.ModuleType]) -> None:
        self.tracker, self.name, self.ours = tracker, name, ours
        self.native = ours["memlens._native"]  # not `from memlens import`: it would re-import
        self.finishing = False  # the capture is being written
        self.arrived = False  # a SIGTERM came meanwhile: die of it once the capture is out
        if _signal.getsignal(_signal.SIGTERM) == _signal.SIG_DFL:
            _signal.signal(_signal.SIGTERM, self.on_sigterm)

    def on_sigterm(self, signum: int, frame: object) -> None:
        if self.finishing:
            self.arrived = True
            return
        _signal.signal(signum, _signal.SIG_DFL)  # a second SIGTERM kills at once
        if self.native.is_tracking():  # this process tracks: the parent, or a followed child
            self.finishing = True
            finish(self.tracker, -signum, self.name, self.ours)
        die_of(signum)

    def finish(self, exit_code: int) -> bool:
        """The program ended: write its capture (see `finish`), then give SIGTERM back."""
        self.finishing = True
        written = finish(self.tracker, exit_code, self.name, self.ours)
        if self.arrived:
            die_of(_signal.SIGTERM)
        if _signal.getsignal(_signal.SIGTERM) == self.on_sigterm:
            _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
        return written


def run_exit_handlers() -> None:
    """What python does before it dies of an unhandled KeyboardInterrupt: atexit, flush."""
    import atexit

    atexit._run_exitfuncs()
    flush(sys.stdout)
    flush(sys.stderr)


def flush(stream: TextIO) -> None:
    try:
        stream.flush()
    except Exception:  # the program may have closed or replaced it
        return


def die_of(signum: int) -> NoReturn:
    """End by the signal's default action, as CPython does after an unhandled KeyboardInterrupt."""
    _signal.signal(signum, _signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # reached only if the program blocked the signal


def save_elsewhere(data: bytes | None, name: str) -> str | None:
    if not data:
        return None
    import tempfile

    try:
        handle, path = tempfile.mkstemp(prefix=f"memlens-{name}.", suffix=".msgpack")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
    except OSError:
        return None
    return path


def format_peak() -> str:
    """The capture's peak for the closing line.

    Not capture.loads (it builds the whole Profile and imports numpy, ~80 ms), not even msgpack
    (~3 ms): the tracker that made the capture still knows its peak. Both count against `memlens
    run`'s start-up budget (DESIGN.md: under 50 ms) just to print one number.
    """
    from memlens import _native
    from memlens.units import format_bytes

    return format_bytes(_native.last_peak())
