"""Atomic file writing, shared by model saving and dataset downloads."""

import contextlib
import errno
import os
import secrets
import stat

__all__ = ["atomic_write"]


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
      an :class:`OSError` (:class:`IsADirectoryError` for a directory).
    """
    shown = os.fspath(path)
    target = os.path.realpath(shown)
    if os.path.islink(target):  # realpath leaves a symlink loop unresolved
        raise OSError(errno.ELOOP, f"cannot write {shown!r}: too many levels of symbolic links")
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
    folder, name = os.path.split(target)
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


def _create_temp(folder, name):
    """A new file ``folder/.name.XXXXXXXX.part``, created ``0o666 & ~umask``."""
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary file name in {folder!r}")


def _copy_owner_and_mode(tmp, old):
    """Give the temporary file ``tmp`` the owner (where allowed) and mode of ``old``."""
    new = os.stat(tmp)
    if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid) and hasattr(os, "chown"):
        with contextlib.suppress(OSError):
            os.chown(tmp, old.st_uid, old.st_gid)
    os.chmod(tmp, stat.S_IMODE(old.st_mode))
