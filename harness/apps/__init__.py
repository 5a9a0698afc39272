"""Small applications and launchers the compatibility targets run in their server processes.

Each application answers any path with HTTP 200 and a JSON object of what the
server told it about the TLS connection: ``HTTPS``, ``wsgi.url_scheme`` and the
``SSL_*`` keys. Nothing here imports the rest of the project, so a server
process loads only its own code and these few lines.
"""
