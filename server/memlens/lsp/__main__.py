"""`python -m memlens.lsp`: the language server over stdio."""

import sys

from memlens.lsp.server import main

sys.exit(main(sys.argv[1:]))
