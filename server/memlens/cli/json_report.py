"""`memlens json CAP [-o out.json]`: the whole per-line index as JSON."""

from __future__ import annotations

import json

from memlens.reports import command, json_report


def main(argv: list[str]) -> int:
    p = command.parser("json", f"The per-line index as JSON (schema {json_report.SCHEMA}).")
    p.add_argument("-o", "--output", metavar="JSON", help="write to a file instead of stdout")
    args = p.parse_args(argv)
    profile = command.load(args.capture)
    text = json.dumps(json_report.build(profile), separators=(",", ":"))  # for tools: compact
    if args.output:
        command.write_file(args.output, text + "\n")
    else:
        command.emit(text)
    return 0
