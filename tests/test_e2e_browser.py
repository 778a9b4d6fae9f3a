"""End to end in a real browser: the real ``paperfeed serve`` on a copy of the 10k sample, driven by Debian chromium.

One scenario walks the whole product as a new user would: register, search, tag
five astrophysics papers with the one-click chips, watch the recommended feed turn
to astrophysics once the model has retrained in the background, read a paper page
(similar papers, top terms, "why"), check math rendering, the keyboard shortcuts,
the phone layout and "not interested", then log out. Console errors, page errors
(CSP violations included) fail the test. Screenshots go to ``test-artifacts/``;
with ``PAPERFEED_UPDATE_SCREENSHOTS=1`` the feed and paper shots are also copied to ``docs/`` for the README.
"""
from __future__ import annotations

import os
import re
import shutil
import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
DOCS = REPO / "docs"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
USERNAME, PASSWORD = "stargazer", "nebula-orbit-4711"
TOPIC_QUERY, TAG = "galaxy", "astro"
CODE_PAPER, CODE_URL = "2504.04704", "https://github.com/AI-Lab-China-Merchants-Bank/LagKV"
CODE_QUERY = "Lag-Relative+Information+of+the+KV+Cache+Tells+Which+Tokens+Are+Important"
RETRAIN_WAIT_S = 30.0
DESKTOP = {"width": 1200, "height": 800}
PHONE = {"width": 390, "height": 844}


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def open_page(browser, problems: list[str], http_errors: bool = False):
    """A new desktop context and page whose console errors and page errors (and, with ``http_errors``, HTTP
    answers of 400 and above) are appended to ``problems``."""
    context = browser.new_context(viewport=DESKTOP, device_scale_factor=1, color_scheme="light",
                                  reduced_motion="reduce")
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text} @ {page.url}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e} @ {page.url}"))
    if http_errors:
        page.on("response", lambda r: problems.append(f"HTTP {r.status} for {r.request.method} {r.url}")
                if r.status >= 400 else None)
    return context, page


@contextlib.contextmanager
def failure_artifacts(context, page, server, problems: list[str], shot: str):
    """Run a browser test's steps: on failure keep a screenshot (``tests/artifacts/<shot>``) and print the server
    log and the browser's problems; always close the context; then fail on any browser problem."""
    try:
        yield
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
        print(f"\n--- server log ---\n{server.log_tail()}\n--- browser problems ---\n" + "\n".join(problems))
        raise
    finally:
        context.close()
    assert not problems, "browser console errors or page errors:\n" + "\n".join(problems)



def _math_title_paper(papers_path: Path) -> tuple[str, str] | None:
    """A paper whose title has inline ``$...$`` math (the 10k sample has a couple of hundred)."""
    from recommender.corpus.store import PaperStore

    pattern = re.compile(r"\$[^$]{1,40}\$")
    with PaperStore(papers_path, readonly=True) as store:
        for paper in store.iter_papers():
            if pattern.search(paper.title):
                return paper.id, paper.title
    return None


class Server:
    def __init__(self, base_url: str, proc: subprocess.Popen, log: Path):
        self.base_url, self.proc, self.log = base_url, proc, log

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


@pytest.fixture
def server(built10k, tmp_path, request):
    """The real ``paperfeed serve --dev`` on a private copy of the 10k store and features, on 127.0.0.1."""
    data, models = tmp_path / "data", tmp_path / "models"
    shutil.copytree(built10k.data_dir, data)
    shutil.copytree(built10k.models_dir, models)
    _arrive_late(models)
    request.node.math_paper = _math_title_paper(built10k.papers_path)

    port = _free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    if "smtp_inbox" in request.fixturenames:  # email through a loopback SMTP server (the digest tests)
        env.update(PAPERFEED_SMTP_HOST="127.0.0.1", PAPERFEED_SMTP_PORT=str(request.getfixturevalue("smtp_inbox").port),
                   PAPERFEED_SMTP_FROM="Paperfeed <digest@example.org>", PAPERFEED_SMTP_TLS="none",
                   PAPERFEED_SMTP_TIMEOUT="5", PAPERFEED_PUBLIC_URL=f"http://127.0.0.1:{port}")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "serve", "--dev", "--host", "127.0.0.1", "--port", str(port),
             "--threads", "4", "--data-dir", str(data), "--models-dir", str(models)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}", proc, log)

    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    request.addfinalizer(stop)

    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"paperfeed serve exited with {proc.returncode}:\n{srv.log_tail()}")
        try:
            with urllib.request.urlopen(srv.url("/"), timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"paperfeed serve did not answer within 60 s:\n{srv.log_tail()}")
        time.sleep(0.2)
    return srv


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found: install Debian's chromium package to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _astro_count(page, n: int = 10) -> tuple[int, int]:
    """(cards among the first n visible ones with an astro-ph category chip, cards looked at)."""
    cats = page.eval_on_selector_all(
        ".list .card:not(.gone)",
        f"cards => cards.slice(0, {n}).map(c => Array.from(c.querySelectorAll('.cat')).map(a => a.textContent.trim()))")
    return sum(any(c.startswith("astro-ph") for c in chips) for chips in cats), len(cats)


def _shot(page, name: str, *, docs: str | None = None, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    if docs and os.environ.get("PAPERFEED_UPDATE_SCREENSHOTS") == "1":  # a plain test run leaves tracked files alone
        shutil.copyfile(path, DOCS / docs)


def _arrive_late(models_dir: Path) -> None:
    """Rewrite the index's arrival times as arXiv announces papers: those dated within five days of the
    newest came in one batch a day after the newest paper's date, the rest a month before."""
    import datetime as dt

    import numpy as np

    from recommender.features.index import to_day
    from recommender.storage.artifacts import Generations, read_json, read_npz, write_npz

    gens = Generations(models_dir)
    folder = gens.path(gens.current())
    rows = read_npz(folder / "rows.npz")
    newest = dt.date.fromisoformat(read_json(folder / "meta.json")["last_date"])
    batch = dt.datetime(newest.year, newest.month, newest.day, tzinfo=dt.timezone.utc).timestamp() + 86400
    late = rows["dates"] >= to_day(newest) - 5
    rows["first_seen"] = np.where(late, batch, batch - 30 * 86400).astype(np.int64)
    write_npz(folder / "rows.npz", **rows)


def _set_last_seen(data_dir: Path, username: str, day: str) -> None:
    """Pretend the user was last here at noon UTC on ``day`` (the server then starts a new visit)."""
    import datetime as dt
    import sqlite3

    noon = dt.datetime.fromisoformat(day + "T12:00:00+00:00").timestamp()
    with sqlite3.connect(data_dir / "users.sqlite", timeout=30) as conn:
        conn.execute("UPDATE user_prefs SET last_seen = ? WHERE user_id = (SELECT id FROM users WHERE username = ?)",
                     (noon, username))
    conn.close()


def test_new_user_journey(server, browser, request, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "failure.png").unlink(missing_ok=True)
    problems: list[str] = []
    context, page = open_page(browser, problems, http_errors=True)
    u = server.url

    with failure_artifacts(context, page, server, problems, "failure.png"):
        # 1. Register through the form: lands on the feed, logged in.
        page.goto(u("/register"))
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Register").click()
        page.wait_for_url(re.compile(r"/(\?.*)?$"))
        expect(page.locator("#logout")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_contain_text(USERNAME)
        # With no tags the recommended feed falls back to the newest papers, and says so.
        expect(page.locator(".controls .notice")).to_contain_text("Tag a few papers")
        # A first visit opens on the past week, and says that next time it opens on what is new.
        expect(page.locator(".controls .notice")).to_contain_text("Here is the past week")
        expect(page.locator('select[name="w"]')).to_have_value("new")
        newest_astro, newest_n = _astro_count(page)
        assert newest_n == 10, "the newest feed should show at least 10 papers"

        # 1b. Since your last visit: back two days before the newest paper, the feed opens on what arrived
        # since (see _arrive_late), papers dated before the visit included.
        import datetime as dt
        newest_day = page.request.get(u("/api/feed?mode=recent&limit=1")).json()["papers"][0]["date"]
        visit = (dt.date.fromisoformat(newest_day) - dt.timedelta(days=2)).isoformat()
        _set_last_seen(tmp_path / "data", USERNAME, visit)
        page.goto(u("/"))
        expect(page.locator(".controls .summary")).to_contain_text(f"arrived since your last visit ({visit} 12:00 UTC)")
        dates = page.eval_on_selector_all(".list .card time", "ts => ts.map(t => t.getAttribute('datetime'))")
        oldest = (dt.date.fromisoformat(newest_day) - dt.timedelta(days=5)).isoformat()
        assert dates and min(dates) >= oldest, (oldest, min(dates))
        _shot(page, "feed-since-last-visit.png")

        # 2. Search for a clear topic.
        page.locator("#q").fill(TOPIC_QUERY)
        page.locator("#q").press("Enter")
        page.wait_for_url(re.compile(r"/search\?q=" + TOPIC_QUERY))
        cards = page.locator(".list .card")
        expect(cards.first).to_be_visible()
        assert cards.count() >= 10
        search_astro, _ = _astro_count(page)
        assert search_astro >= 8, f"search for {TOPIC_QUERY!r} should find astrophysics ({search_astro}/10)"
        _shot(page, "search.png")

        # 3. Tag five astro-ph results into a new tag, one click each, without a reload.
        astro_cards = page.locator(".list .card").filter(has=page.locator(".cat", has_text="astro-ph"))
        page.evaluate("window.__noReload = 'still here'")
        url_before = page.url
        first = astro_cards.nth(0)
        first.locator(".new-tag input[name=tag]").fill(TAG)
        first.locator(".new-tag").get_by_role("button", name="Add").click()
        expect(first.locator(f'.tag-toggle[data-tag="{TAG}"]')).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#status")).to_contain_text(f"Tagged as {TAG}")
        tagged = [first.get_attribute("id")]
        for i in range(1, 5):
            card = astro_cards.nth(i)
            chip = card.locator(f'.tag-toggle[data-tag="{TAG}"]')
            expect(chip).to_have_attribute("aria-pressed", "false")  # the new tag appeared on every card
            chip.click()
            expect(chip).to_have_attribute("aria-pressed", "true")
            tagged.append(card.get_attribute("id"))
        assert page.evaluate("window.__noReload") == "still here", "tagging reloaded the page"
        assert page.url == url_before
        tagged_ids = {t.removeprefix("p-") for t in tagged}
        assert len(tagged_ids) == 5

        page.goto(u("/library"))
        box = page.locator(".tagbox").filter(has=page.get_by_role("link", name=TAG, exact=True))
        expect(box.locator(".count")).to_have_text("5")

        # 4. The recommended feed turns to the topic once the background retrain is done.
        deadline = time.monotonic() + RETRAIN_WAIT_S
        while True:
            page.goto(u("/?mode=rec&window=all"))  # an old-style link: redirected to the short one
            expect(page.locator(".controls .summary")).to_be_visible()
            stale = (page.locator(".controls .notice", has_text=re.compile("Tag a few|being trained")).count()
                     + page.locator(".controls .badge").count())
            if not stale:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the model was not retrained within {RETRAIN_WAIT_S:.0f} s:\n{server.log_tail()}")
            page.wait_for_timeout(300)
        expect(page.locator(".controls .summary")).to_contain_text("ranked for your whole library")
        assert page.url == u("/?m=rec&w=all"), page.url
        # Ranks a person reads: "top 1%" with a bar, explained in a tooltip; no raw model margins.
        rank = page.locator(".list .card .rank").first
        expect(rank).to_contain_text("top 1%")
        assert "Ranked above" in rank.get_attribute("title")
        assert not re.search(r"score -?\d", page.locator(".list").inner_text())
        rec_astro, rec_n = _astro_count(page)
        assert rec_n == 10
        assert rec_astro >= 8, f"the recommended feed should be astrophysics now ({rec_astro}/10)"
        print(f"\nastro-ph among the top 10: newest {newest_astro}, search {search_astro}, recommended {rec_astro}")
        assert newest_astro <= 5, f"the newest feed should be mostly not astrophysics ({newest_astro}/10)"
        assert rec_astro - newest_astro >= 4, (newest_astro, rec_astro)
        shown = {i.removeprefix("p-") for i in page.eval_on_selector_all(".list .card", "cs => cs.map(c => c.id)")}
        assert not shown & tagged_ids, "tagged papers are hidden from the recommended feed"
        _shot(page, "feed-rec.png", docs="screenshot-feed.png")

        # 5. Keyboard: "/" focuses the search box, "j" the first card, "j" again the second.
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press("/")
        expect(page.locator("#q")).to_be_focused()
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("j")
        expect(page.locator(".list .card").nth(0)).to_be_focused()
        page.keyboard.press("j")
        expect(page.locator(".list .card").nth(1)).to_be_focused()
        page.keyboard.press("k")
        expect(page.locator(".list .card").nth(0)).to_be_focused()

        # 5b. Abstracts show their first lines: "o" expands the current paper's, a click on "more" another's,
        # and "o" typed into the search box is just a letter.
        first_abstract = page.locator(".list .card").nth(0).locator(".abstract")
        clamp_height = first_abstract.locator(".clamp").bounding_box()["height"]
        page.keyboard.press("o")
        expect(first_abstract).to_have_class(re.compile(r"\bopen\b"))
        expect(first_abstract.locator(".more")).to_have_attribute("aria-expanded", "true")
        assert first_abstract.locator(".clamp").bounding_box()["height"] > clamp_height
        _shot(page, "abstract-open.png")
        page.keyboard.press("o")
        expect(first_abstract).not_to_have_class(re.compile(r"\bopen\b"))
        second_abstract = page.locator(".list .card").nth(1).locator(".abstract")
        second_abstract.locator(".more").click()
        expect(second_abstract).to_have_class(re.compile(r"\bopen\b"))
        assert page.url == u("/?m=rec&w=all"), "'more' followed its no-JavaScript link"
        page.locator("#q").focus()
        page.keyboard.press("o")
        expect(page.locator("#q")).to_have_value("o")
        expect(first_abstract).not_to_have_class(re.compile(r"\bopen\b"))
        page.locator("#q").fill("")

        # 5c. Filters are remembered: a category picked here is still there when the feed opens again.
        page.locator('select[name="c"]').select_option("astro-ph.GA")
        page.wait_for_url(re.compile(r"c=astro-ph\.GA"))
        assert "category=" not in page.url and "h=" not in page.url, page.url  # short and clean
        page.goto(u("/"))
        expect(page.locator('select[name="c"]')).to_have_value("astro-ph.GA")
        expect(page.locator('select[name="w"]')).to_have_value("all")
        page.locator('select[name="c"]').select_option("")
        page.wait_for_url(re.compile(r"/\?m=rec&w=all$"))

        # 5d. Code links: a "code" badge and clickable links in the abstract, safely.
        page.goto(u("/search?q=" + CODE_QUERY))
        code_card = page.locator(f'[id="p-{CODE_PAPER}"]')
        badge = code_card.locator("a.code-badge")
        expect(badge).to_have_attribute("href", CODE_URL)
        expect(badge).to_have_attribute("rel", "noopener noreferrer nofollow")
        link = code_card.locator(".abstract a.ext")
        expect(link).to_have_attribute("href", CODE_URL)
        expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        code_card.scroll_into_view_if_needed()
        _shot(page, "search-code-badge.png")
        page.goto(u("/?mode=rec"))

        # 6. A recommended paper's page: why, top terms, similar papers.
        top = page.locator(".list .card").first
        top_title = top.locator(".title a")
        top_title.click()
        page.wait_for_url(re.compile(r"/papers/"))
        expect(page.locator(".paper h1")).to_be_visible()
        why = page.locator("section.why")
        expect(why).to_be_visible()
        expect(why.get_by_role("heading")).to_have_text("Why you might like it")
        expect(why).to_contain_text(re.compile(r"model ranks it in the top \d+% of 10,000 papers"))
        assert why.locator(".terms li").count() >= 1
        terms = page.locator('section[aria-label="Top terms"]')
        expect(terms.get_by_role("heading")).to_have_text("Top terms")
        assert terms.locator(".terms li a").count() >= 5
        similar = page.locator("#similar .card")
        expect(similar.first).to_be_visible()
        assert similar.count() >= 5
        page.set_viewport_size({"width": DESKTOP["width"], "height": 1300})  # down to why / top terms
        _shot(page, "paper.png", docs="screenshot-paper.png")
        page.set_viewport_size(DESKTOP)
        page.locator("#similar").scroll_into_view_if_needed()
        _shot(page, "paper-similar.png")

        # 7. Math: KaTeX renders $...$ in titles.
        math = request.node.math_paper
        if math is None:
            pytest.fail("no paper with $...$ math in its title in the 10k sample; the KaTeX check needs one")
        math_id, math_title = math
        page.goto(u(f"/papers/{math_id}"))
        heading = page.locator(".paper h1")
        expect(heading.locator(".katex").first).to_be_attached()
        assert heading.locator(".katex-error").count() == 0, f"KaTeX could not render {math_title!r}"
        assert "$" not in heading.locator(".katex-html").first.inner_text()
        _shot(page, "math.png")

        # 8. Phone width: nothing scrolls sideways.
        page.set_viewport_size(PHONE)
        for path, name in (("/?mode=rec", "mobile-feed.png"), (f"/search?q={TOPIC_QUERY}", "mobile-search.png"),
                           (f"/papers/{math_id}", "mobile-paper.png"), ("/library", "mobile-library.png")):
            page.goto(u(path))
            expect(page.locator("main")).to_be_visible()
            width = page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} scrolls sideways on a phone: {width}px > {PHONE['width']}px"
            _shot(page, name)
        page.set_viewport_size(DESKTOP)

        # 9. Not interested: the card disappears at once, and stays gone after a reload.
        page.goto(u("/?mode=rec"))
        card = page.locator(".list .card").first
        card_id = card.get_attribute("id")
        card.get_by_role("button", name="Not interested").click()
        expect(page.locator(f'[id="{card_id}"]')).to_be_hidden()
        expect(page.locator("#status")).to_contain_text("fewer papers like this")
        page.reload()
        expect(page.locator(".list .card").first).to_be_visible()
        assert page.locator(f'[id="{card_id}"]').count() == 0, "a paper marked not interested came back"

        # 9b. Mark all as read (issue 11, part 3): the newest papers of the week go, and the feed goes on after them.
        page.goto(u("/?m=recent&w=week"))
        first_id = page.locator(".list .card").first.get_attribute("id")
        page.get_by_role("button", name="Mark all as read").click()
        page.wait_for_url(re.compile(r"s=1"))
        expect(page.locator("body")).to_contain_text("as read")
        assert page.locator(f'[id="{first_id}"]').count() == 0, "a paper marked read is still on the hide-seen feed"
        expect(page.locator('input[name="s"][type="checkbox"]')).to_be_checked()

        # 10. Log out: the library now asks for a login.
        page.locator("#logout").click()
        expect(page.get_by_role("link", name="Log in")).to_be_visible()
        page.goto(u("/library"))
        page.wait_for_url(re.compile(r"/login"))
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()

        # 11. Popular, for anonymous visitors too: one reader's tags are never shown, so it is empty and says why.
        page.goto(u("/"))
        page.locator(".modes label", has_text="Popular").click()
        page.wait_for_url(re.compile(r"/\?m=popular$"))
        expect(page.locator(".list .empty")).to_contain_text("once at least 2 readers tag them")
        assert page.locator(".list .card").count() == 0


def test_import_a_bib_file_through_the_upload_form(server, browser):
    """Issue 10: a new user uploads a Zotero .bib on /library, sees the report and the tagged papers, then
    gets a personal feed trained on them."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    bib = REPO / "tests" / "fixtures" / "library" / "zotero-astro.bib"
    problems: list[str] = []
    context, page = open_page(browser, problems)
    u = server.url
    with failure_artifacts(context, page, server, problems, "failure-import.png"):
        page.goto(u("/register"))
        page.get_by_label("Username").fill("importer")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Register").click()
        page.wait_for_url(re.compile(r"/(\?.*)?$"))

        page.goto(u("/library"))
        page.get_by_label("File").set_input_files(str(bib))
        page.get_by_label("Tag", exact=True).fill("galaxies")
        page.get_by_role("button", name="Import").click()
        report = page.locator("#import-report")
        expect(report).to_contain_text("7 entries read (bibtex): 6 matched, 0 fetched from arXiv")
        expect(report).to_contain_text("1 without an arXiv id")
        expect(page.locator("#import-not_on_arxiv")).to_contain_text("Galactic dynamics")
        box = page.locator(".tagbox").filter(has=page.get_by_role("link", name="galaxies", exact=True))
        expect(box.locator(".count")).to_have_text("6")
        expect(box).to_contain_text("Synthetic Clones of the Most Distant Galaxies in the Universe")
        _shot(page, "library-import.png", full_page=True)

        deadline = time.monotonic() + RETRAIN_WAIT_S
        while True:
            page.goto(u("/?t=galaxies&w=all"))
            stale = (page.locator(".controls .notice", has_text=re.compile("Tag a few|being trained")).count()
                     + page.locator(".controls .badge").count())
            if not stale:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the model was not trained within {RETRAIN_WAIT_S:.0f} s:\n{server.log_tail()}")
            page.wait_for_timeout(300)
        expect(page.locator(".list .card .rank").first).to_be_visible()
        astro, n = _astro_count(page)
        assert n == 10 and astro >= 8, f"the feed for the imported tag should be astrophysics ({astro}/{n})"
        _shot(page, "feed-after-import.png")


@pytest.fixture
def smtp_inbox():
    from tests.smtpserver import SMTPServer

    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_digest_settings_and_one_click_links(smtp_inbox, server, browser, tmp_path):
    """Issue 11: set up the email digest on the account page (address, daily, one tag), confirm the address
    from the message the save sent, then use a digest's one-click "tag" link: a confirmation page, one button,
    the result."""
    import email
    import email.policy

    from playwright.sync_api import expect

    from recommender.accounts import subscriptions
    from recommender.accounts.users import UserStore
    from recommender.delivery.links import Link, Signer, link_key

    expect.set_options(timeout=10_000)
    problems: list[str] = []
    context, page = open_page(browser, problems)
    u = server.url
    paper, other = "2504.13999", "2510.00095"
    with failure_artifacts(context, page, server, problems, "failure-digest.png"):
        page.goto(u("/register"))
        page.get_by_label("Username").fill("subscriber")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Register").click()
        page.wait_for_url(re.compile(r"/(\?.*)?$"))
        token = page.locator('meta[name="csrf-token"]').get_attribute("content")
        for tag_name in ("astro", "later"):
            response = page.request.put(u(f"/api/tags/{tag_name}/papers/{paper}"), headers={"X-CSRFToken": token})
            assert response.ok, response.text()

        # the account page's digest form
        page.goto(u("/account#digest"))
        digest = page.locator("#digest")
        digest.get_by_label("Email address").fill("subscriber@example.org")
        digest.get_by_label("How often").select_option("daily")
        digest.get_by_label("Papers per digest").fill("5")
        digest.get_by_label("Only these tags:").check()
        digest.get_by_label("astro", exact=True).check()
        digest.get_by_label("Add papers popular with other readers").check()
        digest.get_by_role("button", name="Save digest settings").click()
        expect(page.locator("#status")).to_contain_text("Digest settings saved.")
        expect(page.locator("#status")).to_contain_text("A confirmation message went to subscriber@example.org")
        expect(page.locator("#digest-address")).to_contain_text("not confirmed yet")
        expect(digest.get_by_label("How often")).to_have_value("daily")
        expect(digest.get_by_label("Papers per digest")).to_have_value("5")
        expect(digest.get_by_label("astro", exact=True)).to_be_checked()
        expect(digest.get_by_label("later", exact=True)).not_to_be_checked()
        _shot(page, "account-digest.png", full_page=True)

        # the confirmation message, its link opened in the browser
        deadline = time.monotonic() + 10
        while not smtp_inbox.messages and time.monotonic() < deadline:
            time.sleep(0.1)
        assert smtp_inbox.messages, "no confirmation message reached the SMTP server"
        msg = email.message_from_bytes(smtp_inbox.messages[-1], policy=email.policy.default)
        assert msg["To"] == "subscriber@example.org"
        confirm_url = re.search(re.escape(u("/email/")) + r"\S+", msg.get_body(("plain",)).get_content()).group(0)
        response = page.goto(confirm_url)
        assert response.headers["referrer-policy"] == "no-referrer"
        expect(page.locator("#email-link")).to_contain_text("Confirm that subscriber@example.org")
        page.get_by_role("button", name="Confirm address").click()
        expect(page.locator("#link-done")).to_contain_text("subscriber@example.org is confirmed")
        page.goto(u("/account#digest"))
        expect(page.locator("#digest-address")).to_contain_text("confirmed")
        expect(page.locator("#digest-address")).not_to_contain_text("not confirmed")

        # a digest's one-click "tag" link, signed for this user, opened in another browser (no session)
        settings_dir = tmp_path / "data"
        with UserStore(settings_dir / "users.sqlite") as store:
            uid = store.get_user("subscriber").id
            epoch = subscriptions.get(store, uid).link_epoch
        link = Signer(link_key(settings_dir)).dumps(Link("tag", uid, epoch, paper=other, tag="astro"))
        reader = browser.new_context(viewport=PHONE)
        mail_page = reader.new_page()
        mail_page.on("pageerror", lambda e: problems.append(f"page error: {e} @ {mail_page.url}"))
        try:
            mail_page.goto(u(f"/email/{link}"))
            expect(mail_page.locator("#email-link")).to_contain_text("Tag a paper")
            expect(mail_page.locator("#link-paper")).not_to_be_empty()
            expect(mail_page.get_by_label("Add it to the tag")).to_have_value("astro")
            expect(mail_page.locator("#email-link")).to_contain_text("Nothing has changed yet")
            mail_page.get_by_role("button", name="Add to tag").click()
            expect(mail_page.locator("#link-done")).to_contain_text("Added to your tag “astro”.")
        finally:
            reader.close()
        tags = page.request.get(u("/api/tags")).json()["tags"]
        assert other in next(t["papers"] for t in tags if t["name"] == "astro")
