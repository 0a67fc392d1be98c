"""Protocols: loading and validating protocol files, and the session engine."""
