"""Exception types users can catch.

Every error a user can cause (a bad file, a wrong embedding, a missing checkpoint) is one of
these, so the CLI can print one line and exit 2 and the app can turn it into ``gr.Error``
without guessing which exceptions are "user" errors and which are bugs.
"""

from __future__ import annotations


class STARCasterError(Exception):
    """Base class of every error the user can act on."""


class InputError(STARCasterError, ValueError):
    """An input (image, audio, embedding, setting) is invalid; the message says how to fix it."""


class CheckpointError(STARCasterError):
    """A checkpoint is missing, incomplete, corrupt or in a refused format (pickle)."""


class OfflineError(CheckpointError):
    """The Hub cannot be reached (offline mode or no network) and the files are not cached."""
