// ringfence console: the live feed (server-sent events) and unmasking in
// place. Everything works without this file except the live updates.
"use strict";
(function () {
  function csrf() {
    var b = document.getElementById("feed");
    return b ? b.getAttribute("data-csrf") : "";
  }

  // Live feed: each "call" event carries one rendered table row.
  function live() {
    var body = document.getElementById("feed");
    if (!body || !body.dataset.events || !window.EventSource) return;
    var status = document.getElementById("feed-status");
    var es = new EventSource(body.dataset.events);
    es.addEventListener("call", function (ev) {
      var t = document.createElement("tbody");
      t.innerHTML = ev.data;
      var row = t.firstElementChild;
      if (!row || document.getElementById(row.id)) return;
      row.classList.add("fresh");
      body.insertBefore(row, body.firstChild);
      var empty = document.getElementById("empty");
      if (empty) empty.remove();
      while (body.rows.length > 500) body.deleteRow(-1);
    });
    es.addEventListener("end", function (ev) {
      es.close();
      if (status) status.textContent = ev.data || "The live feed has stopped; reload the page.";
    });
    es.onerror = function () {
      if (status && es.readyState === EventSource.CLOSED) status.textContent = "The live feed has stopped; reload the page.";
    };
  }

  // Unmask in place: POST with the CSRF token, put the number in the cell.
  function unmask() {
    document.addEventListener("submit", function (ev) {
      var f = ev.target;
      if (!f.classList || !f.classList.contains("unmask")) return;
      ev.preventDefault();
      fetch(f.action, { method: "POST", headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (j) {
          var row = f.closest("tr");
          var cell = row && row.querySelector("[data-caller]");
          if (cell) { cell.textContent = j.caller; cell.setAttribute("data-unmasked", ""); }
          f.remove();
        })
        .catch(function () { f.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { live(); unmask(); });
})();
