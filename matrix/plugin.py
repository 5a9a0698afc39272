"""pytest plugin for the matrix (filled in by the matrix issue)."""
