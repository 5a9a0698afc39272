"""``python -m matrix``: an alias of the ``mtls-matrix`` command."""

import sys

from .cli import main

sys.exit(main())
