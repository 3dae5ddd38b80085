"""``/api/``: a read-only REST API with bearer tokens, described by ``/api/openapi.json``."""
