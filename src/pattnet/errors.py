"""One exception type for everything a user can cause.

The CLI turns a :class:`PattnetError` into a single ``pattnet: error: ...`` line and a non-zero
exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PattnetError(Exception):
    """A problem with the user's input (file, option, data) rather than with pattnet itself."""


class StoreError(PattnetError):
    """A patch store that is missing, truncated or inconsistent."""


class ConfigError(PattnetError):
    """A configuration file or override that does not match the typed config."""
