"""Output: one run per directory, ordinary permissions, and one clear error when the directory cannot be written."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from conftest import run_cli
from peekaboo.errors import OutputError
from peekaboo.evaluation.results import item_dir, stale_reason, write_item
from peekaboo.io.atomic import check_writable, write_bytes
from peekaboo.io.lock import run_lock

QUICK = ["data.num_scenes=2", "schedule.iterations=2", "trainer.enable_progress_bar=false"]


def test_a_second_run_on_a_locked_directory_fails_fast(tmp_path):
    run = tmp_path / "run"
    with run_lock(run, "0123456789ab"):
        result = run_cli([*QUICK, f"hydra.run.dir={run}"], tmp_path, timeout=120)
        same = pytest.raises(OutputError, match="in use by another run .* with the same configuration")
        with same, run_lock(run, "0123456789ab"):
            pass
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: {run} is in use by another run (pid {os.getpid()} on ")
    )
    assert "with a different configuration (hash 0123456789ab, this run's is " in result.stderr
    assert not (run / "items").exists()
    assert (run / ".lock").read_text() == ""  # released (and emptied) when its holder is done
    with run_lock(run, "fedcba987654"):
        assert '"config_hash": "fedcba987654"' in (run / ".lock").read_text()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_respect_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        write_bytes(tmp_path / "a" / "f.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "f.bin").stat().st_mode) == 0o666 & ~mask


def test_run_outputs_are_readable_by_others_under_the_usual_umask(tmp_path):
    result = run_cli([*QUICK, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "run").rglob("*") if p.is_file() and p.name != ".lock"}
    mask = os.umask(0)
    os.umask(mask)
    assert modes == {0o666 & ~mask}


def test_a_full_disk_is_one_error_and_finished_items_stay_complete(tmp_path, monkeypatch):
    files, record = {"alpha.png": b"png", "alpha.npy": b"npy"}, {"config_hash": "h"}
    write_item(item_dir(tmp_path, "done"), files, record)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError) as err:
        write_item(item_dir(tmp_path, "next"), files, record)
    monkeypatch.undo()
    assert str(err.value) == (
        f"cannot write {tmp_path / 'items' / 'next' / 'alpha.png'}: No space left on device (ENOSPC); the disk is "
        "full: free space (or choose another hydra.run.dir) and run again; finished items are kept and the next run "
        "resumes after them"
    )
    assert stale_reason(item_dir(tmp_path, "done"), "h") is None
    assert stale_reason(item_dir(tmp_path, "next"), "h") == "not done"
    assert list((tmp_path / "items" / "next").iterdir()) == []  # no temporaries left behind


def test_unwritable_run_directories_are_one_line(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    result = run_cli([*QUICK, f"hydra.run.dir={tmp_path / 'file'}"], tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: hydra.run.dir={tmp_path / 'file'} is a file, not a directory: move it or choose another hydra.run.dir"
    )

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("tempfile.mkstemp", read_only)  # as root, chmod cannot make a directory read-only
    with pytest.raises(OutputError, match=r"hydra.sweep.dir=.* cannot be written: Read-only file system \(EROFS\)"):
        check_writable(tmp_path / "sweep", "hydra.sweep.dir")
