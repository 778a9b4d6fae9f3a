"""The README documents every setting, every CLI command and the test command CI runs."""
import re

import pytest

from jobs.cli import COMMANDS, plugin_commands
from recommender.settings import SETTINGS
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting):
    assert setting.env in README, f"README does not mention {setting.env}"


@pytest.mark.parametrize("command", sorted({*COMMANDS, *plugin_commands()}))
def test_every_command_is_documented(command):
    assert re.search(rf"paperfeed {command}\b", README), f"README does not document `paperfeed {command}`"


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r"Run the tests:\s*```(?:bash)?\n(.+?)\n```", README, re.S)
    assert match, "README needs a 'Run the tests:' block"
    assert match.group(1).strip() in ci


def test_models_readme_is_tracked_and_lists_artifacts():
    text = (REPO / "models" / "README.md").read_text(encoding="utf-8")
    from recommender.features.index import MAPPED_FILES

    for name in (*MAPPED_FILES, "X.npz", "ids.json", "CURRENT", "users/"):
        assert name in text


def test_serve_is_registered_as_a_plugin():
    assert "serve" in plugin_commands(), "pip install -e . registers webapp's serve command"
