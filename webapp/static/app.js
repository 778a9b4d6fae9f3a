// Paperfeed front end: math rendering, one-click tagging through the JSON API, keyboard navigation.
// Loaded as a file (the CSP forbids inline scripts). Every request sends the page's CSRF token.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var status = document.getElementById("status");

  function say(message, kind) {
    var p = document.createElement("p");
    p.className = "flash " + (kind || "ok");
    p.textContent = message;
    status.replaceChildren(p);
  }

  function api(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Content-Type": "application/json", "Accept": "application/json"},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { throw new Error(data.message || ("request failed (" + r.status + ")")); }
        return data;
      });
    });
  }

  function tagUrl(tag, pid) {
    return "/api/tags/" + encodeURIComponent(tag) + "/papers/" + pid.split("/").map(encodeURIComponent).join("/");
  }

  function chip(tag, pid, on) {
    var b = document.createElement("button");
    b.type = "button"; b.className = "chip tag-toggle";
    b.dataset.tag = tag; b.dataset.paper = pid;
    b.setAttribute("aria-pressed", on ? "true" : "false");
    b.textContent = tag;
    return b;
  }

  function toggle(button) {
    var on = button.getAttribute("aria-pressed") === "true";
    button.disabled = true;
    api(on ? "DELETE" : "PUT", tagUrl(button.dataset.tag, button.dataset.paper)).then(function () {
      button.setAttribute("aria-pressed", on ? "false" : "true");
      say((on ? "Removed from " : "Tagged as ") + button.dataset.tag + ". Your feed updates in a moment.");
    }).catch(function (e) { say(e.message, "error"); }).finally(function () { button.disabled = false; });
  }

  function addTag(form) {
    var input = form.querySelector('input[name="tag"]');
    var tag = input.value.trim(), pid = form.dataset.paper;
    if (!tag) { return; }
    api("PUT", tagUrl(tag, pid)).then(function () {
      var box = form.parentNode;
      var existing = box.querySelector('.tag-toggle[data-tag="' + CSS.escape(tag) + '"]');
      if (existing) { existing.setAttribute("aria-pressed", "true"); }
      else { box.insertBefore(chip(tag, pid, true), form); }
      // A new tag becomes a one-click chip on every other paper of the page too.
      document.querySelectorAll(".tags").forEach(function (other) {
        var otherForm = other.querySelector(".new-tag");
        if (other === box || !otherForm || other.querySelector('.tag-toggle[data-tag="' + CSS.escape(tag) + '"]')) { return; }
        other.insertBefore(chip(tag, other.dataset.paper, false), otherForm);
      });
      var list = document.getElementById("user-tags");
      if (list && !list.querySelector('option[value="' + CSS.escape(tag) + '"]')) {
        var o = document.createElement("option"); o.value = tag; list.appendChild(o);
      }
      input.value = "";
      say("Tagged as " + tag + ". Your feed updates in a moment.");
    }).catch(function (e) { say(e.message, "error"); });
  }

  function notInterested(button) {
    api("POST", "/api/papers/" + button.dataset.paper.split("/").map(encodeURIComponent).join("/") + "/not-interested")
      .then(function () {
        var card = button.closest(".card");
        if (card) { card.classList.add("gone"); }
        say("Noted: fewer papers like this one.");
      }).catch(function (e) { say(e.message, "error"); });
  }

  // Abstracts show their first lines; a click on them or on "more" (or "o" on the current paper) expands.
  function expand(box, open) {
    if (!box) { return; }
    open = open === undefined ? !box.classList.contains("open") : open;
    box.classList.toggle("open", open);
    var more = box.querySelector(".more");
    if (more) { more.setAttribute("aria-expanded", open ? "true" : "false"); more.textContent = open ? "less" : "more"; }
  }

  function markShortAbstracts() {
    // "more" only where the clamp hides something (measured after KaTeX has set the math).
    document.querySelectorAll(".abstract:not(.open) .clamp").forEach(function (p) {
      var more = p.parentNode.querySelector(".more");
      if (more) { more.hidden = p.scrollHeight <= p.clientHeight + 2; }
    });
  }

  document.addEventListener("click", function (event) {
    var t = event.target;
    if (t.matches(".tag-toggle")) { toggle(t); }
    else if (t.matches(".not-interested")) { notInterested(t); }
    else if (t.matches(".abstract .more")) { event.preventDefault(); expand(t.closest(".abstract")); }
    else if (t.closest(".abstract .clamp") && !t.closest("a") && !window.getSelection().toString()) {
      var box = t.closest(".abstract");
      if (!box.classList.contains("open")) { expand(box, true); }
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches(".new-tag")) { event.preventDefault(); addTag(form); }
    else if (form.matches(".confirm") && !window.confirm(form.dataset.confirm)) { event.preventDefault(); }
  });

  // Filters apply as soon as they change (the Apply button stays for keyboard users).
  var filters = document.getElementById("filters");
  if (filters) {
    filters.addEventListener("change", function () { filters.requestSubmit(); });
  }

  // Keyboard: j/k move between papers, o opens or closes the current paper's abstract, / focuses search.
  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (el.matches("input, textarea, select, [contenteditable]") || el.isContentEditable ||
        event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "/") { event.preventDefault(); document.getElementById("q").focus(); return; }
    if (event.key !== "j" && event.key !== "k" && event.key !== "o") { return; }
    var cards = Array.prototype.slice.call(document.querySelectorAll(".card:not(.gone)"));
    if (!cards.length) { return; }
    var i = cards.indexOf(document.activeElement.closest ? document.activeElement.closest(".card") : null);
    if (event.key === "o") {
      if (i < 0) { i = 0; cards[0].focus(); }
      expand(cards[i].querySelector(".abstract"));
      return;
    }
    i = event.key === "j" ? Math.min(cards.length - 1, i + 1) : Math.max(0, i - 1);
    cards[i].focus();
    cards[i].scrollIntoView({block: "nearest"});
  });

  // Math: KaTeX with trust off, so \href, \url and friends render as plain text.
  function renderMath() {
    if (!window.renderMathInElement) { return; }
    document.querySelectorAll(".math").forEach(function (el) {
      window.renderMathInElement(el, {
        delimiters: [
          {left: "$$", right: "$$", display: true}, {left: "$", right: "$", display: false},
          {left: "\\(", right: "\\)", display: false}, {left: "\\[", right: "\\]", display: true}
        ],
        throwOnError: false, trust: false, strict: "ignore"
      });
    });
  }
  function ready() { renderMath(); markShortAbstracts(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", ready); }
  else { ready(); }
})();
