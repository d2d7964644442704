// fieldsync console: the only script. Pages work without it; it adds
// (1) live lists: an element with data-live="URL" data-every="ms" is
//     refreshed from URL (a server-rendered fragment) without a reload, and
// (2) "select all" checkboxes for bulk forms (data-select-all="name").
// No inline script anywhere: the Content-Security-Policy forbids it.
(function () {
  "use strict";
  function live(el) {
    var url = el.getAttribute("data-live");
    var every = parseInt(el.getAttribute("data-every"), 10) || 3000;
    var busy = false;
    function tick() {
      if (busy || document.hidden) return;
      busy = true;
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
        .then(function () { busy = false; });
    }
    setInterval(tick, every);
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
