#!/usr/bin/env python3
"""Checks docs/openapi.yaml against a running coffred.

Usage: scripts/openapi_check.py BIN_DIR [--spec docs/openapi.yaml] [--verbose]

The entry point of the `openapi_check` package beside this file, which holds the check itself:
its __init__.py says what the check does and where each resource's cases are.
"""

import sys
from pathlib import Path

# The package beside this file (this directory is already first on the path when the file is
# run as a script; not when it is run otherwise, e.g. by runpy).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from openapi_check.run import main  # noqa: E402  (the path above must come first)

if __name__ == "__main__":
    sys.exit(main())
