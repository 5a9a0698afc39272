"""Servers the matrix can run against, each behind ``harness.target.Target``."""
