"""Hypercorn configuration that turns on CRL checking: ``-c python:harness.apps.hypercorn_crl``.

Hypercorn has no command-line flag for it; its ``verify_flags`` setting is copied
onto the stdlib context (``Config.create_ssl_context``). The CRL itself must sit
in the ``--ca-certs`` file: ``load_verify_locations`` reads CRLs from it too.
"""

import ssl as _ssl

verify_flags = _ssl.VERIFY_CRL_CHECK_LEAF | _ssl.VERIFY_X509_TRUSTED_FIRST
