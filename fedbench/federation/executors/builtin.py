"""Importing this module registers every built-in executor."""

import fedbench.federation.executors.sequential  # noqa: F401
