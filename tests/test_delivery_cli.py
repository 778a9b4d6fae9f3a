"""``paperfeed account`` and ``paperfeed digest`` from the shell, and the instance config file (paperfeed.toml)."""
from __future__ import annotations

import json
import os

import pytest

from recommender.accounts.users import UserStore
from recommender.settings import load_settings
from tests.conftest import run_cli

PASSWORD = "correct horse battery staple 42\n"


@pytest.fixture
def user(settings, capsys, monkeypatch):
    assert run_cli(["useradd", "dana", "--password-stdin"], settings, capsys, PASSWORD, monkeypatch)[0] == 0
    return "dana"


def test_account_shows_and_changes_the_digest_settings(settings, user, capsys):
    code, out, _ = run_cli(["account", user], settings, capsys)
    assert code == 0 and "digest: off, 10 papers, whole library" in out and "(no address)" in out
    code, out, _ = run_cli(["account", user, "--email", "Dana@Example.ORG", "--digest", "weekly", "--digest-size", "25",
                            "--popular", "--nothing-new", "--json"], settings, capsys)
    data = json.loads(out)
    assert code == 0 and data["digest"] == {**data["digest"], "email": "Dana@example.org", "email_confirmed": True,
                                            "frequency": "weekly", "size": 25, "popular": True, "nothing_new": True,
                                            "tags": None}
    code, out, _ = run_cli(["account", user, "--no-popular", "--digest", "off"], settings, capsys)
    assert code == 0 and "digest: off, 25 papers, whole library" in out and "popular" not in out


@pytest.mark.parametrize("argv,message", [
    (["--digest", "daily"], "a digest needs an address: add --email ADDR"),
    (["--email", "not an address"], "email must be one plain address"),
    (["--email", "a@example.org\nBcc: b@example.org"], "email must be one plain address"),
    (["--digest-tag", "no such tag"], "you have no tag 'no such tag'"),
    (["--feed-tag", "x"], "--feed-tag needs --feed-token"),
])
def test_account_refuses_bad_values_in_one_line(settings, user, capsys, argv, message):
    code, out, err = run_cli(["account", user, *argv], settings, capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_account_digest_size_is_checked_by_the_parser(settings, user, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(["account", user, "--digest-size", "0"], settings, capsys)
    assert info.value.code == 2 and "digest size must be a whole number from 1 to 50" in capsys.readouterr().err


def test_account_unknown_user(settings, capsys):
    code, _, err = run_cli(["account", "nobody"], settings, capsys)
    assert code == 2 and "no user 'nobody'" in err


def test_account_feed_token_prints_a_working_secret_once(settings, user, capsys, monkeypatch):
    monkeypatch.setenv("PAPERFEED_PUBLIC_URL", "https://paperfeed.example.org/")
    code, out, _ = run_cli(["account", user, "--feed-token", "--json"], settings, capsys)
    data = json.loads(out)
    assert code == 0 and data["feed"]["url"].startswith("https://paperfeed.example.org/feeds/pff_")
    secret = data["feed"]["path"].removeprefix("/feeds/").removesuffix(".atom")
    with UserStore(settings.users_path) as users:
        assert users.feed_token(secret).user_id == users.get_user(user).id
    code, out, _ = run_cli(["account", user], settings, capsys)
    assert "Atom feeds: 1" in out and secret not in out  # listed, never shown again


def test_digest_without_email_settings_says_which_is_missing(settings, user, capsys, monkeypatch):
    code, _, err = run_cli(["digest"], settings, capsys)
    assert code == 2 and "PAPERFEED_PUBLIC_URL" in err and "--dry-run" in err
    monkeypatch.setenv("PAPERFEED_PUBLIC_URL", "https://paperfeed.example.org")
    code, _, err = run_cli(["digest"], settings, capsys)
    assert code == 2 and "set PAPERFEED_SMTP_HOST and PAPERFEED_SMTP_FROM" in err and "Traceback" not in err
    code, out, _ = run_cli(["digest", "--dry-run"], settings, capsys)  # nothing subscribed: nothing to do
    assert code == 0 and "would send 0" in out
    code, _, err = run_cli(["digest", "--dry-run", "--user", "ghost"], settings, capsys)
    assert code == 2 and "no user 'ghost'" in err


def test_the_instance_config_file_sets_settings_below_the_environment(tmp_path):
    data = tmp_path / "data"
    (data / "instance").mkdir(parents=True)
    config = data / "instance" / "paperfeed.toml"
    config.write_text('smtp_host = "mail.example.org"\nsmtp_port = 465\nsmtp_tls = "ssl"\n', encoding="utf-8")
    os.chmod(config, 0o600)
    s = load_settings(environ={"PAPERFEED_CONFIG": str(config)}, data_dir=data)
    assert (s.smtp_host, s.smtp_port, s.smtp_tls, s.config_file) == ("mail.example.org", 465, "ssl", config.resolve())
    s = load_settings(environ={"PAPERFEED_CONFIG": str(config), "PAPERFEED_SMTP_PORT": "2525"}, data_dir=data)
    assert s.smtp_port == 2525  # the environment wins
    assert load_settings(environ={}, data_dir=data).smtp_host == ""  # an explicit environ: no file read


@pytest.mark.parametrize("text,message", [
    ('smtp_hots = "x"\n', "unknown settings: smtp_hots"),
    ('smtp_host = \n', "config file"),
    ('data_dir = "/elsewhere"\n', "data_dir cannot be set here"),
    ('smtp_tls = "tls"\n', "must be one of starttls, ssl, none"),
])
def test_a_bad_config_file_is_one_clear_error(tmp_path, text, message):
    config = tmp_path / "paperfeed.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_settings(environ={"PAPERFEED_CONFIG": str(config)}, data_dir=tmp_path)


def test_a_missing_named_config_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_settings(environ={"PAPERFEED_CONFIG": str(tmp_path / "nope.toml")}, data_dir=tmp_path)
