"""Differential testing with generated client certificates (SPEC section 11).

``plan`` (what a certificate is, and hypothesis strategies for it), ``issue`` (PEM files
from a plan), ``predict`` (the admission oracle), ``endpoints`` (the targets and the
client), ``compare`` (one certificate's differences), ``runner`` (hypothesis, budget and
shrinking) and ``cli`` (``mtls-matrix fuzz``). docs/fuzz.md says how to run it and read
a finding.
"""
