"""The error every bad setting becomes: one line that names the bad key and where it came from."""

from __future__ import annotations


class ConfigError(Exception):
    """A bad config file, flag or environment variable, or contradictory settings (CLI exit code 2)."""
