"""Crash-safe recording, recovery and reading of sessions."""
