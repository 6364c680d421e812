"""Checks that a command's output file or folder can be written, made before any long work, so
a bad path costs the user seconds rather than a run, and is reported in one line that names the
flag they typed."""

import os
import tempfile

__all__ = ["OutputPathError", "check_output_file", "check_output_folder"]


class OutputPathError(Exception):
    """An output path that cannot be written. The message is one line naming the flag;
    ``status`` is the exit status a command should use: 2 for a malformed value (a usage
    error), 1 for a path the file system refuses."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def _check_writable_folder(folder, flag):
    """Create ``folder`` (and its parents) if needed and write a scratch file in it."""
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(f"{flag}: cannot create folder {folder!r}: a file of that name "
                              "exists", 1) from None
    except OSError as e:
        raise OutputPathError(f"{flag}: cannot create folder {folder!r}: {e.strerror or e}",
                              1) from None
    # Permission bits do not tell the whole story (root ignores them, a read-only mount does
    # not), so actually write.
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OutputPathError(f"{flag}: cannot write in folder {folder!r}: {e.strerror or e}",
                              1) from None


def check_output_folder(path, flag):
    """Raise :class:`OutputPathError` unless the folder ``path`` (given with ``flag``) can take
    the command's files. Creates the folder, as the command would."""
    if not path:
        raise OutputPathError(f"{flag} must name a folder, not an empty string", 2)
    _check_writable_folder(path, flag)


def check_output_file(path, flag):
    """Raise :class:`OutputPathError` unless the file ``path`` (given with ``flag``) can be
    written. Creates the file's folder, as the command would, and leaves any existing file as
    it is."""
    if not path:
        raise OutputPathError(f"{flag} must name a file, not an empty string", 2)
    if os.path.isdir(path):
        raise OutputPathError(f"{flag}: {path!r} is a folder, not a file", 1)
    _check_writable_folder(os.path.dirname(path) or ".", flag)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputPathError(f"{flag}: cannot write {path!r}: permission denied", 1)
