"""Prints what a script run by python would see about itself, as JSON."""

import json
import sys

print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "name": __name__, "file": __file__}))
