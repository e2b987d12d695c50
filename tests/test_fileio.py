"""skvae._fileio.atomic_write: atomic, yet with the semantics of an ordinary write."""

import contextlib
import os

import pytest

from skvae._fileio import atomic_write


@contextlib.contextmanager
def umask(value):
    """Set the process umask for the ``with`` body, restoring it after."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def write(path, data):
    with atomic_write(path) as file:
        file.write(data)


def mode(path):
    return oct(os.stat(path).st_mode & 0o7777)


def test_writes_the_data_and_leaves_no_temporary_file(tmp_path):
    write(tmp_path / "out.bin", b"new")
    assert (tmp_path / "out.bin").read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("mask, expected", [(0o077, "0o600"), (0o022, "0o644"), (0o002, "0o664")], ids=["077", "022", "002"])
def test_new_file_gets_the_umask_mode(tmp_path, mask, expected):
    with umask(mask):
        write(tmp_path / "out.bin", b"new")
    assert mode(tmp_path / "out.bin") == expected


@pytest.mark.parametrize("kept", [0o600, 0o640, 0o664], ids=oct)
def test_existing_file_keeps_its_mode(tmp_path, kept):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    path.chmod(kept)
    with umask(0o022):
        write(path, b"new")
    assert path.read_bytes() == b"new"
    assert mode(path) == oct(kept)


def test_read_only_file_is_refused_and_left_intact(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    path.chmod(0o444)
    with pytest.raises(PermissionError) as info:
        write(path, b"new")
    message = str(info.value)
    assert str(path) in message and "read-only" in message
    assert "chmod" in message and "another path" in message
    assert path.read_bytes() == b"old"
    assert mode(path) == "0o444"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_symlink_is_written_through(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.bin"
    link.symlink_to(os.path.join("real", "model.bin"))  # relative link

    write(link, b"new")
    assert link.is_symlink()
    assert os.readlink(link) == os.path.join("real", "model.bin")
    assert target.read_bytes() == b"new"
    assert mode(target) == "0o640"
    assert sorted(os.listdir(tmp_path)) == ["link.bin", "real"]
    assert os.listdir(tmp_path / "real") == ["model.bin"]


def test_chain_of_symlinks_is_written_through(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    (tmp_path / "a").symlink_to(target)
    (tmp_path / "b").symlink_to(tmp_path / "a")
    write(tmp_path / "b", b"new")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()
    assert target.read_bytes() == b"new"


def test_dangling_symlink_creates_its_target(tmp_path):
    target = tmp_path / "model.bin"
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    with umask(0o077):
        write(link, b"new")
    assert link.is_symlink()
    assert target.read_bytes() == b"new"
    assert mode(target) == "0o600"
    assert sorted(os.listdir(tmp_path)) == ["link.bin", "model.bin"]


def test_symlink_loop_is_refused(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OSError, match="symbolic links"):
        write(tmp_path / "a", b"new")
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


@pytest.mark.parametrize("failure", [OSError("disk full"), ValueError("bad"), KeyboardInterrupt()])
def test_failure_mid_write_keeps_the_old_file(tmp_path, failure):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(type(failure)):
        with atomic_write(path) as file:
            file.write(b"half of the new")
            raise failure
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_failure_on_a_new_file_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "out.bin") as file:
            file.write(b"half")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_directory_is_refused(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory; give a file path") as info:
        write(folder, b"new")
    assert str(folder) in str(info.value)
    assert os.listdir(folder) == []
    assert os.listdir(tmp_path) == ["models"]
