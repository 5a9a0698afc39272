"""Entry point for ``python -m reports``."""

import sys

from .cli import main

sys.exit(main())
