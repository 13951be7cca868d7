# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Errors a user can fix: a bad dataset, checkpoint, config value, output folder or input file.

Every such error derives from :class:`UserError` and carries one message that names the file or
config key and says what to do. The command-line tasks print it as one line, ``error:
<message>``, and exit with code 2 (:class:`irsam.tasks.runner.UserErrorCallback`); the traceback
is printed instead with ``verbose=true`` or ``HYDRA_FULL_ERROR=1``. Called from Python, the
tasks raise these errors like any other.
"""

from __future__ import annotations

from collections.abc import Iterator

EXIT_CODE = 2
"""Exit status of a command stopped by a :class:`UserError` (as argparse's usage errors)."""


class UserError(Exception):
    """An error in what the user gave (data, checkpoint, config, output folder, input file).

    The message names the file or config key and the fix.
    """


class ConfigError(UserError, ValueError):
    """A config value (a Hydra key or a command-line override) is missing, unknown or invalid."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named (a checkpoint, an input, a results file) does not exist."""


class OutputExistsError(UserError, FileExistsError):
    """An output folder already holds files that a new run's outputs would mix with."""


def find_user_error(error: BaseException) -> UserError | None:
    """The :class:`UserError` behind ``error``, following ``raise ... from`` causes (Hydra's
    ``instantiate`` wraps what a constructor raises).

    Arguments:
      error (BaseException): the raised error.
    Returns:
      UserError | None: ``error`` itself or the first user error among its causes; None when
      there is none.
    """
    for link in _chain(error):
        if isinstance(link, UserError):
            return link
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then its chain of ``__cause__`` links (each error visited once)."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__
