"""Importing this module registers every built-in dataset."""

import fedbench.data.emoji  # noqa: F401
