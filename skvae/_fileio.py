"""Atomic file writing, shared by model saving and dataset downloads."""

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat
import time

__all__ = ["atomic_write", "check_path"]

# Temporary files are named ".{name}.skvae-{host}-{pid}-{random}.part": the
# host (a hash of its name) and the process id tell a later write whether
# the writer still runs, so that the temporary file of a killed write (a
# model file can be tens of MB) does not stay forever.
_TEMP_NAME = re.compile(r"\A\..+\.skvae-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{8}\.part\Z")
# A temporary file of another machine (a shared folder), or of a process id
# that a new process has taken since, is stale once nobody has written to
# it for this long: no skvae write pauses anywhere near a day.
_STALE_AFTER_SECONDS = 24 * 3600


def check_path(path):
    """``path`` as a str; refuse what is not a file path.

    Accepts what :func:`open` accepts as a path, except file descriptors: a
    str, bytes (decoded with :func:`os.fsdecode`) or an :class:`os.PathLike`.
    """
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(path)
    raise TypeError(
        f"path must be a str, bytes or os.PathLike object (e.g. pathlib.Path), "
        f"not {type(path).__name__}: {path!r}."
    )


@contextlib.contextmanager
def atomic_write(path):
    """Write ``path`` atomically: ``with atomic_write(path) as file: ...``.

    Yields a binary file open for writing. It is a temporary file in the
    destination's folder; when the ``with`` body finishes without an
    exception it is flushed, fsynced and renamed over the destination. On
    any exception (``KeyboardInterrupt`` included) it is removed and an
    existing destination is left intact.

    Otherwise it behaves like an ordinary write:

    * a symlink at ``path`` is written through: its final target is
      replaced and the link stays a link (a dangling link creates its
      target);
    * a new file gets mode ``0o666 & ~umask``; an existing file keeps its
      permission bits (and, where allowed, its owner);
    * an existing file without any write permission bit (e.g. ``0o444``) is
      refused with a :class:`PermissionError` and left untouched, even for
      root; so is one the caller may not write;
    * a directory, or another non-regular file, at ``path`` is refused with
      an :class:`OSError` (:class:`IsADirectoryError` for a directory);
    * a missing folder is refused with a :class:`FileNotFoundError` that
      names it (:class:`NotADirectoryError` where a file stands in its
      place).

    Before writing, it removes the stale temporary files that killed
    writes left in the destination's folder: those named by this function
    whose writing process no longer runs, or that nobody has written to for
    a day (see :func:`_remove_stale_temps`).
    """
    shown = check_path(path)
    target = os.path.realpath(shown)
    if os.path.islink(target):  # realpath leaves a symlink loop unresolved
        raise OSError(errno.ELOOP, f"cannot write {shown!r}: too many levels of symbolic links")
    folder, name = os.path.split(target)
    if not os.path.isdir(folder):
        # Else the error would name the temporary file, not the folder.
        if os.path.exists(folder):
            raise NotADirectoryError(errno.ENOTDIR, f"cannot write {shown!r}: {folder!r} is a file, not a folder")
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot write {shown!r}: the folder {folder!r} does not exist; create it "
            "first, e.g. with os.makedirs",
        )
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    if old is not None:
        if stat.S_ISDIR(old.st_mode):
            raise IsADirectoryError(
                errno.EISDIR, f"cannot write {shown!r}: it is a directory; give a file path inside it"
            )
        if not stat.S_ISREG(old.st_mode):
            raise OSError(errno.EINVAL, f"cannot write {shown!r}: it is not a regular file")
        if not old.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise PermissionError(
                errno.EACCES,
                f"cannot write {shown!r}: the file is read-only (mode "
                f"{stat.S_IMODE(old.st_mode):#o}); make it writable (chmod u+w) "
                "or write to another path",
            )
    _remove_stale_temps(folder)
    fd, tmp = _create_temp(folder, name)
    try:
        with os.fdopen(fd, "wb") as file:
            if old is not None:
                _copy_owner_and_mode(tmp, old)
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _host_tag():
    """8 hex digits that stand for this machine in temporary file names."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _create_temp(folder, name):
    """A new temporary file for ``folder/name`` (see :data:`_TEMP_NAME`),
    created ``0o666 & ~umask``."""
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    prefix = f".{name}.skvae-{_host_tag()}-{os.getpid()}-"
    for _ in range(100):
        tmp = os.path.join(folder, f"{prefix}{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary file name in {folder!r}")


def _remove_stale_temps(folder):
    """Remove the temporary files of writes to ``folder`` that were killed.

    Only files named by :func:`_create_temp` are considered, and only stale
    ones: written by a process of this machine that no longer runs, or not
    written to for :data:`_STALE_AFTER_SECONDS`. A concurrent writer's file
    is kept. Best effort: a file that cannot be examined or removed (another
    writer removed it first, another user owns it) is left alone.
    """
    host = _host_tag()
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            writer_gone = match["host"] == host and not _process_exists(int(match["pid"]))
            if writer_gone or now - entry.stat(follow_symlinks=False).st_mtime > _STALE_AFTER_SECONDS:
                os.unlink(entry.path)
        except OSError:
            continue


def _process_exists(pid):
    """Whether a process ``pid`` runs on this machine (True where unknown)."""
    if os.name != "posix":
        # os.kill(pid, 0) would send CTRL_C_EVENT on Windows: ask nothing,
        # so that only the age of a file makes it stale there.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # it runs as another user; or no pid at all
        return True
    return True


def _copy_owner_and_mode(tmp, old):
    """Give the temporary file ``tmp`` the owner (where allowed) and mode of ``old``."""
    new = os.stat(tmp)
    if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid) and hasattr(os, "chown"):
        with contextlib.suppress(OSError):
            os.chown(tmp, old.st_uid, old.st_gid)
    os.chmod(tmp, stat.S_IMODE(old.st_mode))
