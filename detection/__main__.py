"""Entry point for ``python -m detection``."""

import sys

from detection.cli import main

sys.exit(main())
