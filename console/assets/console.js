// fieldsync console: the only script. Pages work without it; it adds
// (1) live lists: an element with data-live="URL" is refreshed from URL (a
//     server-rendered fragment) without a reload, whenever the server pokes
//     the page's stream (data-events="URL", server-sent events: something
//     the user may see changed), and every data-every ms while the stream is
//     not open (not offered, refused, or reconnecting); with it open, every
//     ten times that, as a safety net;
// (2) "select all" checkboxes for bulk forms (data-select-all="name").
// No inline script anywhere: the Content-Security-Policy forbids it.
(function () {
  "use strict";
  function live(el) {
    var url = el.getAttribute("data-live");
    var every = parseInt(el.getAttribute("data-every"), 10) || 3000;
    var busy = false, again = false, last = Date.now(), es = null;
    function tick() {
      if (document.hidden) return;
      // A poke while a refresh is under way refreshes again after it:
      // the change may have committed after the first read.
      if (busy) { again = true; return; }
      busy = true;
      again = false;
      last = Date.now();
      fetch(url, { credentials: "same-origin", headers: { "X-Console-Fragment": "1" }, cache: "no-store" })
        .then(function (r) {
          // The session ended (signed out elsewhere, revoked, user disabled).
          if (r.status === 401) { window.location.assign("/console/sign-in?ended=1"); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          // The fragment is HTML the server rendered and escaped.
          if (html !== null && html !== undefined) el.innerHTML = html;
        })
        .catch(function () {})
        .then(function () { busy = false; if (again) tick(); });
    }
    var events = el.getAttribute("data-events");
    if (events && window.EventSource) {
      es = new EventSource(events);
      // data-stream tells the page's style (and its tests) whether pokes
      // can arrive: "open", or "closed" while polling carries the list.
      // The stream starts at the server's present: on every (re)open the
      // list is fetched once, for what changed since the page was drawn or
      // while the stream was down.
      es.onopen = function () { el.setAttribute("data-stream", "open"); tick(); };
      es.onerror = function () { el.setAttribute("data-stream", "closed"); };
      es.addEventListener("poke", tick);
      // The stream ended for good (the session ended, the server stops):
      // polling takes over, and its 401 leads to the sign-in page.
      es.addEventListener("end", function () { es.close(); el.setAttribute("data-stream", "closed"); tick(); });
    }
    setInterval(function () {
      var open = es && es.readyState === 1;
      if (!open || Date.now() - last >= 10 * every) tick();
    }, every);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
  }
  function selectAll(box) {
    box.addEventListener("change", function () {
      var name = box.getAttribute("data-select-all");
      var boxes = document.querySelectorAll('input[type=checkbox][name="' + name + '"]');
      for (var i = 0; i < boxes.length; i++) boxes[i].checked = box.checked;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var els = document.querySelectorAll("[data-live]");
    for (var i = 0; i < els.length; i++) live(els[i]);
    var boxes = document.querySelectorAll("[data-select-all]");
    for (var j = 0; j < boxes.length; j++) selectAll(boxes[j]);
  });
})();
