"""Artifacts are written atomically: a killed `compute` leaves the previous generation current."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from recommender.storage import artifacts
from recommender.features.index import FeatureIndex
from recommender.learning.models import UserModel, load_user_model, model_path
from tests.conftest import REPO


def test_atomic_file_leaves_old_content_on_failure(tmp_path):
    target = tmp_path / "a.json"
    artifacts.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with artifacts.atomic_file(target, "w") as handle:
            handle.write('{"v": 2, "half')
            raise RuntimeError("killed")
    assert artifacts.read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failed_generation_is_not_published(tmp_path):
    gens = artifacts.Generations(tmp_path)
    with gens.new() as folder:
        artifacts.write_json(folder / "ids.json", ["a"])
    first = gens.current()
    with pytest.raises(ValueError):
        with gens.new() as folder:
            artifacts.write_json(folder / "ids.json", ["b"])
            raise ValueError("boom")
    assert gens.current() == first
    assert not list(gens.root.glob(".gen-*"))


def test_npz_loads_refuse_pickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        artifacts.read_npz(path)


def test_user_model_roundtrip(tmp_path):
    model = UserModel(7, "gen-x", 3, 1.5, ["__all__", "tag é"], np.ones((2, 4), np.float32),
                      np.zeros(2, np.float32), np.array([[1, -1], [0, 2]], np.int32), np.zeros((2, 2), np.float32))
    model.save(model_path(tmp_path, 7))
    loaded = load_user_model(tmp_path, 7)
    assert (loaded.user_id, loaded.generation, loaded.tags_version, loaded.tags) == (7, "gen-x", 3, ["__all__", "tag é"])
    assert np.array_equal(loaded.top, model.top)
    assert load_user_model(tmp_path, 8) is None


@pytest.mark.slow
def test_killed_compute_keeps_previous_generation(built10k, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(built10k.models_dir, models)
    before = artifacts.Generations(models).current()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "jobs.cli", "compute", "--data-dir", str(built10k.data_dir), "--models-dir", str(models)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = models / "features"
    deadline = time.monotonic() + 300
    # Wait until the new generation is being written, then kill without warning.
    while not list(root.glob(".gen-*.tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leftovers = list(root.glob(".gen-*.tmp"))
    assert leftovers, "compute finished before it could be killed mid-write"
    assert artifacts.Generations(models).current() == before
    index = FeatureIndex.load(models)
    assert index.generation == before and len(index) == 10000
    # The next run clears the dead run's leftovers and publishes a complete generation.
    assert subprocess.run(argv, env=env, capture_output=True).returncode == 0
    assert not list(root.glob(".gen-*.tmp"))
    assert FeatureIndex.load(models).generation != before


def test_artifacts_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    """Cron and the web server may run as different users: artifacts are as readable as the umask allows."""
    for umask in (0o022, 0o002, 0o077):
        folder = tmp_path / oct(umask)
        old = os.umask(umask)
        try:
            artifacts.write_json(folder / "a.json", [1])
            artifacts.write_npz(folder / "b.npz", x=np.arange(3))
            gens = artifacts.Generations(folder / "models")
            with gens.new() as generation:
                artifacts.write_json(generation / "ids.json", ["a"])
            written = [folder / "a.json", folder / "b.npz", gens.pointer, gens.path(gens.current()) / "ids.json"]
        finally:
            os.umask(old)
        assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o666 & ~umask)}, oct(umask)


def test_a_killed_writers_temp_file_is_removed_but_a_live_ones_is_kept(tmp_path):
    target = tmp_path / "users" / "7.npz"
    script = ("import os, sys\nfrom recommender.storage.artifacts import atomic_file\n"
              f"with atomic_file({str(target)!r}) as handle:\n"
              "    handle.write(b'half a model'); handle.flush(); os.kill(os.getpid(), 9)\n")
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.wait(60) == -signal.SIGKILL
    [killed] = artifacts.find_temps(tmp_path)
    assert artifacts.temp_pid(killed.name) == child.pid and not target.exists()
    old = tmp_path / "users" / ".8.npz.q1w2e3r4.tmp"  # an older release's name: no pid; stale after an hour
    old.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    recent = tmp_path / "users" / ".9.npz.a1s2d3f4.tmp"
    recent.write_bytes(b"x")
    live = artifacts.atomic_file(tmp_path / "users" / "10.npz")
    handle = live.__enter__()  # a writer of this process, mid-write
    handle.write(b"in progress")
    assert sorted(artifacts.remove_stale_temps(tmp_path)) == sorted([killed, old])
    assert recent.exists() and len(artifacts.find_temps(tmp_path)) == 2
    live.__exit__(None, None, None)
    assert (tmp_path / "users" / "10.npz").read_bytes() == b"in progress"
