"""Runs inside the target process, injected by `memlens attach` / `memlens detach`.

The debugger schedules `PyRun_SimpleString` as a pending call; CPython runs it in the main
thread, between two bytecodes, with the GIL held (the way it runs signal handlers), and that
string executes this file in a fresh namespace (the program's `__main__` gains no names). It
reads the attacher's request, checks that this interpreter can load the memlens native module it
names, makes that memlens importable without touching `sys.path`, hands the request to
`memlens.attach.agent`, and writes the answer where the attacher waits for it.

Only the standard library, and syntax every CPython from 3.6 on understands, so that a target
running another Python version gets a clear answer instead of a SyntaxError.
"""

import json
import os
import sys


class Refusal(Exception):
    pass


def answer(path, reply):
    """Write the reply atomically (the attacher never reads half of it), with as few
    allocations as can be: after a start, the tracker counts them."""
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, json.dumps(reply).encode())
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def load_memlens(package_dirs):
    """Import the attacher's memlens (its package dirs: sources, native module) as `memlens`."""
    import importlib.util

    wanted = [os.path.realpath(folder) for folder in package_dirs]
    module = sys.modules.get("memlens")
    if module is not None:
        folder = os.path.dirname(getattr(module, "__file__", None) or "")
        if os.path.realpath(folder) not in wanted:
            raise Refusal(
                f"the process already imported another memlens ({folder}); attach with that one"
            )
        return
    spec = importlib.util.spec_from_file_location(
        "memlens", os.path.join(package_dirs[0], "__init__.py"), submodule_search_locations=wanted
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["memlens"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["memlens"]
        raise


def main(request_path):
    try:
        with open(request_path) as file:
            request = json.load(file)
    except (OSError, ValueError):
        return  # the attacher gave up and removed its directory: do nothing
    try:
        wanted = tuple(request["python"])
        if sys.implementation.name != "cpython" or tuple(sys.version_info[:2]) != wanted:
            running = "{} {}.{}".format(sys.implementation.name, *sys.version_info[:2])
            raise Refusal(
                f"the process runs {running}, not the CPython {wanted[0]}.{wanted[1]} "
                "memlens was built for"
            )
        load_memlens(request["package_dirs"])
        from memlens.attach import agent

        reply = agent.handle(request)
    except Refusal as refusal:
        reply = {"ok": False, "error": str(refusal)}
    except Exception as error:
        reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    answer(request["reply"], reply)


if __name__ == "__memlens_attach__":
    main(globals()["REQUEST"])
