"""Errors meant for the user: printed without a traceback, non-zero exit."""


class SslrunError(Exception):
    """A problem the user can fix (bad input, missing data, incomplete run dir).

    The message names the thing, the value and what to do.
    """

    exit_code = 2


class DataError(SslrunError):
    """Data set missing, unreadable or inconsistent."""


class RunDirError(SslrunError):
    """A run or pretext directory is missing, incomplete or incompatible."""
