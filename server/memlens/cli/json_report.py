"""`memlens json CAP [-o out.json]`: the whole per-line index as JSON."""

from __future__ import annotations

import argparse
import json

from memlens.cli import command
from memlens.model import Profile
from memlens.reports import json_report


def _options(p: command.Parser) -> None:
    p.add_argument("-o", "--output", metavar="JSON", help="write to a file instead of stdout")


def _text(profile: Profile, args: argparse.Namespace) -> str:
    text = json.dumps(json_report.build(profile), separators=(",", ":"))  # for tools: compact
    if not args.output:
        return text
    command.write_file(args.output, text + "\n")
    return ""


REPORT = command.Report(
    "json",
    f"The per-line index as JSON (schema {json_report.SCHEMA}).",
    text=_text,
    options=_options,
)
main = REPORT.main
