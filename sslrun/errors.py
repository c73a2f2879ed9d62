"""Errors meant for the user: printed without a traceback, non-zero exit.

Exit codes (docs/failures.md, "What happens when things go wrong"): 1 Hydra could not compose the config
(typo, wrong type); 2 a problem the user can fix (SslrunError); 3 training diverged (NaN loss) or collapsed
(trainer.stop_on_collapse); 74 an output could not be written (disk full, read-only, no permission); 75 try again later
(preempted by SIGTERM/SIGUSR2, or the run dir / cache key is busy); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable


class SslrunError(Exception):
    """A problem the user can fix (bad input, missing data, incomplete run dir).

    The message names the thing, the value and what to do.
    """

    exit_code = 2


class ConfigError(SslrunError, ValueError):
    """A config value the code cannot use (also a ValueError for callers of the Python API)."""


class UnknownName(SslrunError, KeyError):
    """A name no registry holds (also a KeyError for callers of the Python API)."""

    __str__ = Exception.__str__  # KeyError's would quote the message


class DataError(SslrunError):
    """Data set missing, unreadable or inconsistent."""


class RunDirError(SslrunError):
    """A run or pretext directory is missing, incomplete or incompatible."""


class Busy(SslrunError):
    """Another live process holds the run dir's or cache key's lock longer than lock_timeout."""

    exit_code = 75  # EX_TEMPFAIL: rerun later


class OutputError(SslrunError):
    """An output could not be written: disk full, read-only file system, no permission."""

    exit_code = 74  # EX_IOERR


class Interrupted(SslrunError):
    """Ctrl-C (SIGINT); finished epochs are checkpointed, so the same command resumes."""

    exit_code = 130  # 128 + SIGINT, as shells report it


_FULL = {errno.ENOSPC, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def output_error(err: OSError) -> OutputError | None:
    """A clear one-line error for a disk-full or permission failure; None for other OSErrors."""
    where = err.filename or "the run directory"
    if err.errno in _FULL:
        return OutputError(
            f"cannot write {where}: {err.strerror} (the disk is full); free space or point "
            "hydra.run.dir / cache_dir at another disk, then rerun the same command: it resumes from the "
            "last finished epoch"
        )
    if err.errno in _DENIED:
        return OutputError(
            f"cannot write {where}: {err.strerror}; sslrun writes its run dir (hydra.run.dir) and "
            "cache_dir: make them writable, or point them elsewhere"
        )
    return None


def command_main(prog: str, command: Callable[[], int], error_type: type[SslrunError], interrupted: str) -> None:
    """A console script's main (sslrun-predict, -embed, -select): exit with what `command` returns; a user's error,
    a failed write or Ctrl-C is one `prog: error: ...` line and its exit code, no traceback."""
    try:
        sys.exit(command())
    except KeyboardInterrupt:
        err: SslrunError = Interrupted(interrupted)
    except OSError as os_err:
        err = output_error(os_err) or error_type(f"{os_err.filename or 'a file'}: {os_err.strerror or os_err}")
    except SslrunError as user_err:
        err = user_err
    print(f"{prog}: error: {err}", file=sys.stderr)
    sys.exit(err.exit_code)
