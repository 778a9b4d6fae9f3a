"""`paperfeed --version`, and serving on a port that is taken: one line and exit 2, never a crash after
"serving on"."""
import os
import socket
import subprocess
import sys

import pytest

import recommender
from tests.conftest import REPO, run_cli


def test_version_names_the_package_and_python():
    out = subprocess.run([sys.executable, "-m", "jobs.cli", "--version"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip() == f"paperfeed {recommender.__version__} (Python {sys.version.split()[0]})"


@pytest.fixture
def busy_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_on_a_busy_port_is_one_line_and_exit_2(built10k, busy_port, tmp_path):
    env = {**os.environ, "PAPERFEED_DATA_DIR": str(built10k.data_dir),
           "PAPERFEED_MODELS_DIR": str(built10k.models_dir), "PAPERFEED_SECRET_KEY": "x" * 32}
    out = subprocess.run([sys.executable, "-m", "jobs.cli", "serve", "--port", str(busy_port)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if "error" in line]
    assert lines == [f"paperfeed serve: error: port {busy_port} on 127.0.0.1 is already in use (another "
                     f"`paperfeed serve`?): stop that server or pass --port with a free port"], out.stderr
    assert "serving on" not in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_serve_rejects_a_port_that_is_not_a_port(port, capsys, settings):
    with pytest.raises(SystemExit) as exit_:
        run_cli(["serve", "--port", port], settings, capsys)
    assert exit_.value.code == 2
    assert "is not a port number (0-65535)" in capsys.readouterr().err


def test_demo_checks_the_port_before_it_builds_anything(busy_port, settings, capsys):
    code, _, err = run_cli(["demo", "--port", str(busy_port)], settings, capsys)
    assert code == 2
    assert f"cannot serve on 127.0.0.1:{busy_port}" in err and "--no-serve" in err
    assert not settings.papers_path.exists(), "the demo imported papers before finding the port taken"


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["library", "export", "--help"]])
def test_light_commands_do_not_import_the_heavy_libraries(argv):
    """Only the named command's module is imported: `--version`, `--help` and `library export` start in a
    fraction of a second instead of loading scikit-learn and Flask."""
    script = ("import sys\nfrom jobs.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('sklearn', 'flask') if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", script, *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr
