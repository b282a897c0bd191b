"""User-facing errors.

Every problem a user can fix (a bad config value, a missing folder, a corrupt file) is raised as a
:class:`FedbenchError` whose message is one line naming the problem and the fix. The CLI prints that
line and exits with status 2 instead of showing a traceback.
"""


class FedbenchError(Exception):
    """A problem the user can fix; ``str(err)`` is one line that says what and how."""


class ConfigError(FedbenchError):
    """A configuration value is invalid."""


class DataError(FedbenchError):
    """A data file or folder is missing or unreadable."""


class CheckpointError(FedbenchError):
    """A checkpoint or cached artefact is missing, corrupt or from another configuration."""
