/* Corb admin: the only script (the CSP allows no inline script and no other origin).
 * - forms with data-confirm ask first;
 * - on a phone, the menu scrolls to the current page's entry;
 * - selects with data-autosubmit submit their form on change;
 * - the phone simulator sends with fetch and polls a JSON endpoint for replies, drawing them with
 *   textContent only (message bodies are untrusted). Without JavaScript the simulator still works
 *   with plain form posts and reloads. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) el.form.submit();
  });

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    // On a phone the menu scrolls sideways: keep the current page's entry in view.
    var current = document.querySelector(".nav [aria-current=page]");
    var nav = current && current.parentElement;
    if (nav && nav.scrollWidth > nav.clientWidth) {
      var offset = current.getBoundingClientRect().left - nav.getBoundingClientRect().left;
      nav.scrollLeft += offset - (nav.clientWidth - current.offsetWidth) / 2;
    }
  });

  ready(function () {
    var chat = document.getElementById("chat");
    var composer = document.getElementById("composer");
    if (!chat || !composer) return;
    var status = document.getElementById("chat-status");
    var body = composer.querySelector("textarea[name=body]");
    var phone = chat.getAttribute("data-phone");
    var pollUrl = chat.getAttribute("data-poll-url");
    var after = parseInt(chat.getAttribute("data-after") || "0", 10);
    var polling = false;
    var quickPolls = 0;

    function scrollDown() { chat.scrollTop = chat.scrollHeight; }

    function say(text) { if (status) status.textContent = text || ""; }

    function bubble(m) {
      if (chat.querySelector('[data-id="' + m.id + '"]')) return;
      var empty = document.getElementById("chat-empty");
      if (empty) empty.remove();
      var div = document.createElement("div");
      div.className = "bubble " + (m.mine ? "mine" : "theirs");
      div.setAttribute("data-id", String(m.id));
      if (m.media_url) {
        var img = document.createElement("img");
        img.src = m.media_url;
        img.alt = "Picture from Corb";
        img.addEventListener("load", scrollDown);
        div.appendChild(img);
      }
      var text = document.createElement("span");
      text.className = "text";
      text.textContent = m.body || "";
      div.appendChild(text);
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = m.time + (m.mine ? "" : " \u00b7 " + m.status);
      div.appendChild(meta);
      chat.appendChild(div);
    }

    function poll() {
      if (polling || !phone) return;
      polling = true;
      var url = pollUrl + "?phone=" + encodeURIComponent(phone) + "&after=" + after;
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 401) { say("Signed out. Reload to sign in again."); return null; }
          return r.ok ? r.json() : null;
        })
        .then(function (data) {
          if (!data) return;
          data.messages.forEach(function (m) { bubble(m); after = Math.max(after, m.id); });
          if (data.messages.length) { scrollDown(); say(""); }
        })
        .catch(function () { say("Connection lost, retrying\u2026"); })
        .then(function () { polling = false; });
    }

    function schedule() {
      // Quick polls right after sending (replies come from handlers within a second or two), then calm.
      var delay = quickPolls > 0 ? 400 : 2000;
      if (quickPolls > 0) quickPolls -= 1;
      window.setTimeout(function () { poll(); schedule(); }, delay);
    }

    // Messages go out one at a time, in the order typed. The box is emptied as a message is queued, so
    // whatever is typed while a send is in flight stays in the box until its own Send; a message that
    // could not be sent comes back into the box (before anything typed since) with the reason.
    var outgoing = [];
    var sending = false;

    function sendNext() {
      if (sending || !outgoing.length) return;
      sending = true;
      var text = outgoing.shift();
      var data = new FormData(composer);
      data.set("body", text);
      say(outgoing.length ? "Sending\u2026 (" + outgoing.length + " more waiting)" : "Sending\u2026");
      fetch(composer.action, { method: "POST", body: data, credentials: "same-origin",
                               headers: { Accept: "application/json" } })
        .then(function (r) { return r.json().catch(function () { return { ok: false, message: "HTTP " + r.status }; }); })
        .then(function (result) {
          if (result.ok) { say("Delivered to Corb"); quickPolls = 20; poll(); return; }
          failed(text, result.message || "error");
        })
        .catch(function () { failed(text, "connection error"); })
        .then(function () { sending = false; sendNext(); });
    }

    function failed(text, why) {
      var rest = outgoing.splice(0, outgoing.length);
      var typed = body.value;
      body.value = [text].concat(rest, typed ? [typed] : []).join("\n");
      say("Not sent: " + why);
    }

    composer.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = body.value.trim();
      if (!text) return;
      outgoing.push(text);
      body.value = "";
      body.focus();
      sendNext();
    });

    body.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });

    Array.prototype.forEach.call(chat.querySelectorAll("img"), function (img) {
      if (!img.complete) img.addEventListener("load", scrollDown);
    });
    scrollDown();
    schedule();
  });
})();
