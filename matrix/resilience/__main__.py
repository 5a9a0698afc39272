"""``python -m matrix.resilience``."""

import sys

from .cli import main

sys.exit(main())
