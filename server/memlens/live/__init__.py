"""The live terminal view: `memlens run --live` and `memlens live CAP.partial`.

follower.py reads the checkpoints as they are written, rows.py turns a profile into what the view
shows, program.py runs the profiled program in a child process, app.py is the Textual screen.
Only `--live` and `memlens live` import this package (with Textual and numpy it takes about a
second to import).
"""
