"""skvae._fileio.atomic_write: atomic, yet with the semantics of an ordinary write."""

import contextlib
import os
import subprocess
import sys
import time

import pytest

from skvae import _fileio
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


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; create it first") as info:
        write(tmp_path / "models" / "out.bin", b"new")
    assert repr(str(tmp_path / "models")) in str(info.value) and ".part" not in str(info.value)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        write(tmp_path / "file" / "out.bin", b"new")
    assert os.listdir(tmp_path) == ["file"]


def test_paths_may_be_str_bytes_or_path_like(tmp_path):
    write(os.fsencode(tmp_path / "bytes.bin"), b"1")
    write(str(tmp_path / "str.bin"), b"2")
    assert sorted(os.listdir(tmp_path)) == ["bytes.bin", "str.bin"]
    with pytest.raises(TypeError, match=r"path must be a str, bytes or os.PathLike object .*, not int"):
        write(3, b"new")


# A process that writes through atomic_write and then waits, mid-write, to
# be killed. It loads skvae/_fileio.py alone: importing skvae takes seconds.
WRITE_AND_WAIT = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("fileio", sys.argv[1])
fileio = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fileio)
with fileio.atomic_write(sys.argv[2]) as file:
    file.write(b"x" * 1_000_000)
    file.flush()
    print("writing", flush=True)
    time.sleep(120)
"""


def temporary_files(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".part"))


def test_temporary_file_of_a_killed_write_is_removed_by_the_next_write(tmp_path):
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITE_AND_WAIT, _fileio.__file__, str(tmp_path / "model.bin")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline() == "writing\n"
        [temporary] = temporary_files(tmp_path)
        assert temporary.startswith(".model.bin.skvae-") and f"-{writer.pid}-" in temporary
        write(tmp_path / "other.bin", b"new")  # a concurrent writer's file is kept
        assert temporary_files(tmp_path) == [temporary]
    finally:
        writer.kill()  # SIGKILL: no cleanup runs
        writer.wait()
    assert temporary_files(tmp_path) == [temporary]
    write(tmp_path / "other.bin", b"newer")
    assert sorted(os.listdir(tmp_path)) == ["other.bin"]


def test_only_stale_temporary_files_of_atomic_write_are_removed(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    here = _fileio._host_tag()
    elsewhere = "0" * 8 if here != "0" * 8 else "1" * 8
    two_days_ago = time.time() - 2 * 24 * 3600
    files = {
        f".model.bin.skvae-{here}-{ended.pid}-0123abcd.part": "removed",  # its writer has ended
        f".model.bin.skvae-{here}-{os.getpid()}-0123abcd.part": "kept",  # its writer runs
        f".model.bin.skvae-{elsewhere}-{ended.pid}-0123abcd.part": "kept",  # another machine's, recent
        f".data.gz.skvae-{elsewhere}-1-0123abcd.part": "old, removed",  # another machine's, idle for days
        f".data.gz.skvae-{here}-{os.getpid()}-0123abcd.part": "old, removed",
        ".model.bin.0123abcd.part": "old, kept",  # not named by atomic_write
        "notes.part": "old, kept",
    }
    for name, fate in files.items():
        (tmp_path / name).write_bytes(b"partial")
        if fate.startswith("old"):
            os.utime(tmp_path / name, (two_days_ago, two_days_ago))
    (tmp_path / f".dir.skvae-{here}-{ended.pid}-0123abcd.part").mkdir()  # not a file
    write(tmp_path / "model.bin", b"new")
    expected = {name for name, fate in files.items() if not fate.endswith("removed")}
    expected |= {"model.bin", f".dir.skvae-{here}-{ended.pid}-0123abcd.part"}
    assert set(os.listdir(tmp_path)) == expected
