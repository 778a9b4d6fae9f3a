"""Issue 9: a new generation must not take anyone's recommendations away, and limits answer 409."""
from __future__ import annotations

import pytest

from recommender.features import FeatureParams
from recommender.features.index import compute_generation
from recommender.corpus.papers import Paper
from recommender.corpus.store import PaperStore
from webhelpers import register, send, tag, topic_papers

pytestmark = pytest.mark.slow


def wait(app):
    app.extensions["paperfeed"].wait_for_retrains(60)


def test_a_new_generation_keeps_the_feed_recommended_and_the_web_does_not_retrain(client, app, web_settings,
                                                                                   monkeypatch):
    """Defect: every compute made every model stale, feeds fell back to "newest" until each user was
    retrained, and every web worker retrained everyone."""
    import webapp.state

    token = register(client, "alice")
    astro = topic_papers(client, "galaxy dark matter halo", "astro-ph", 5)
    tag(client, token, "astro", *astro)
    wait(app)
    before = client.get("/api/feed?mode=rec&limit=10").json
    assert before["mode"] == "rec" and before["notice"] is None
    state = app.extensions["paperfeed"]
    old = state.index()
    with PaperStore(web_settings.papers_path) as store:
        store.upsert_many([Paper(id="2607.00042", version=1, title="Pulsar timing arrays",
                                 abstract="We search pulsar timing array data for a gravitational wave background.",
                                 categories=("astro-ph.HE",), published="2026-07-01", updated="2026-07-01")])
        compute_generation(store, web_settings.models_dir, FeatureParams(**old.meta["params"]))
    monkeypatch.setattr(webapp.state, "RELOAD_CHECK_S", 0.0)
    scheduled = []
    monkeypatch.setattr(state._retrainer, "schedule", lambda uid, change=True: scheduled.append(uid))
    after = client.get("/api/feed?mode=rec&limit=10").json
    assert state.index().generation != old.generation
    assert after["mode"] == "rec" and after["notice"] is None  # carried over by feature name, still ranked
    assert len(set(after["papers"][i]["id"] for i in range(10)) & set(p["id"] for p in before["papers"])) >= 5
    assert scheduled == []  # `train` refits carried models; the web worker does not
    me = client.get("/api/me").json["model"]
    assert me["up_to_date"] is False


def test_limits_answer_409_with_a_message_and_change_nothing(make_app, web_settings):
    from recommender.accounts.users import Limits

    app = make_app()
    client = app.test_client()
    token = register(client, "alice")
    ids = topic_papers(client, "galaxy dark matter halo", "astro-ph", 3)
    limits = web_settings.limits
    assert isinstance(limits, Limits) and limits.tags == 50
    for i in range(limits.tags):
        assert send(client, "PUT", f"/api/tags/t{i:02d}/papers/{ids[0]}", token).status_code == 200
    response = send(client, "PUT", f"/api/tags/one-too-many/papers/{ids[1]}", token)
    assert response.status_code == 409 and "limit of 50 tags" in response.json["message"]
    assert len(client.get("/api/tags").json["tags"]) == 50
    for i in range(limits.api_tokens):
        assert send(client, "POST", "/api/tokens", token, json={"name": f"t{i}"}).status_code == 201
    response = send(client, "POST", "/api/tokens", token, json={"name": "extra"})
    assert response.status_code == 409 and "revoke one" in response.json["message"]
    response = send(client, "PUT", "/api/tags/__all__/papers/" + ids[0], token)
    assert response.status_code == 400 and "reserved" in response.json["message"]


def test_a_failed_retrain_is_shown_on_the_library_and_retried(client, app, monkeypatch):
    """Defect: a failed background retrain was logged once and never retried; the page said "updating" forever."""
    from recommender.learning import retrain, service

    monkeypatch.setattr(retrain, "RETRY_BASE_S", 2.0)
    real, calls = service.retrain_user, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    token = register(client, "alice")
    astro = topic_papers(client, "galaxy dark matter halo", "astro-ph", 3)
    tag(client, token, "astro", *astro[:2])
    wait(app)
    monkeypatch.setattr(service, "retrain_user", flaky)
    tag(client, token, "astro", astro[2])
    wait(app)
    me = client.get("/api/me").json["model"]
    assert me["error"] == "OSError: [Errno 28] No space left on device" and me["up_to_date"] is False
    assert 0 < me["retry_in"] <= 2.0
    page = client.get("/library").get_data(as_text=True)
    assert "Training your model failed" in page and "retried automatically" in page
    state = app.extensions["paperfeed"]
    for _ in range(200):  # the backoff retry lands by itself, with no new change
        if state.retrain_status(1).error is None and not state.retraining(1):
            break
        import time
        time.sleep(0.05)
    assert len(calls) == 2
    me = client.get("/api/me").json["model"]
    assert me["error"] is None and me["up_to_date"] is True
    assert "Training your model failed" not in client.get("/library").get_data(as_text=True)
