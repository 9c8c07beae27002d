"""Smoke test of an installed memlens wheel: `memlens run` on a known script gives the exact
bytes at the known line. Run with the interpreter of the venv the wheel went into."""

import os
import subprocess
import sys
import tempfile

SCRIPT = "import sys\nbuffer = bytearray(10 * 2**20)\nprint(len(buffer))\n"
# bytearray(n): its 56-byte object plus an n + 1 byte buffer, on CPython 3.10 to 3.13.
EXPECTED = 10 * 2**20 + 1 + 56


def main() -> int:
    from memlens import capture

    memlens = os.path.join(os.path.dirname(sys.executable), "memlens")
    with tempfile.TemporaryDirectory() as scratch:
        script = os.path.join(scratch, "known.py")
        output = os.path.join(scratch, "known.msgpack")
        with open(script, "w") as file:
            file.write(SCRIPT)
        command = [memlens, "run", "-o", output, script]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or done.stdout.splitlines()[:1] != [str(10 * 2**20)]:
            print(f"wheel smoke: memlens run failed ({done.returncode}):\n{done.stderr}")
            return 1
        profile = capture.load(output)
        top = profile.lines.top("peak_bytes", 5)
        found = {(line.file, line.line): line.inclusive.peak_bytes for line in top}
        got = found.get((script, 2))
        if got != EXPECTED:
            print(f"wheel smoke: line 2 held {got} B at peak, expected {EXPECTED} B ({found})")
            return 1
    print(f"wheel smoke: CPython {sys.version.split()[0]}: line 2 held {EXPECTED:,} B at peak: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
