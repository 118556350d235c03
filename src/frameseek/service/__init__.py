"""frameseek as a service: an HTTP API over one loaded model (``frameseek serve``).

``app`` (routes), ``auth`` (bearer token), ``limits`` (body size, rate), ``links`` (SSRF guard), ``media``
(which paths a client may name), ``tokens`` / ``files`` (thumbnail and clip ids), ``jobs`` (index jobs),
``backend`` (the Searcher behind the routes), ``schemas`` (bodies), ``errors`` (``{"error": ...}``),
``config`` (settings), ``command`` (``frameseek serve``). Nothing here is imported by the CLI until
``serve`` runs.
"""
