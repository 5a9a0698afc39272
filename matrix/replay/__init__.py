"""A replay corpus of public server bugs, as data, replayed on the releases they name.

Each entry (``corpus.json``) is one public report: the project, the link, the release it
affects and the one that fixed it (with where that fact comes from), the matrix cases or
resilience-battery kinds that show it, and what each release must show. ``python -m
matrix.replay`` (``tox -e replay``) runs every entry on both releases through the compat
run's version axis (harness/targets/columns.py, environments.py) and says, per entry,
whether the affected release fails as stated and the fixed one passes. docs/replay.md
lists the entries with their two verdicts.
"""

from .corpus import Entry, load_corpus

__all__ = ["Entry", "load_corpus"]
