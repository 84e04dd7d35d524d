/* The agent console's script. No framework; loaded from our own origin (CSP script-src 'self').
 * Citizen text is only ever inserted with textContent or as a form value, never as HTML. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* fetch with the session's CSRF token; other console scripts use this for anything that writes. */
  window.consoleFetch = function (url, options) {
    options = options || {};
    var headers = new Headers(options.headers || {});
    headers.set("X-CSRF-Token", csrfToken());
    if (!headers.has("Accept")) headers.set("Accept", "application/json");
    options.headers = headers;
    options.credentials = "same-origin";
    return fetch(url, options);
  };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function replaceText(node, text) {
    if (node && node.textContent !== String(text)) node.textContent = String(text);
  }

  /* ---- queue: new escalations appear without reloading --------------------------------- */

  function queueRow(ticket, isNew) {
    var tr = el("tr", isNew ? "new-row" : "");
    tr.setAttribute("data-ticket", ticket.id);
    var active = ticket.status === "new" || ticket.status === "open" || ticket.status === "pending_citizen";

    var due = el("td", "nowrap");
    due.appendChild(el("span", "due " + (ticket.overdue ? "late" : "ok"), active ? ticket.time_left : "\u2014"));
    due.appendChild(el("br"));
    due.appendChild(el("span", "muted small", ticket.due));
    tr.appendChild(due);

    var idCell = el("td", "nowrap");
    var idLink = el("a", "ticket-id", ticket.id);
    idLink.href = ticket.url;
    idCell.appendChild(idLink);
    tr.appendChild(idCell);

    var subject = el("td", "subject");
    if (ticket.vulnerable) {
      var badge = el("span", "badge vulnerable", "vulnerable: " + ticket.vulnerable_reason);
      badge.title = "Vulnerable: " + ticket.vulnerable_reason;
      badge.setAttribute("data-vulnerable", "");
      subject.appendChild(badge);
      subject.appendChild(document.createTextNode(" "));
    }
    var link = el("a", "", ticket.subject);
    link.href = ticket.url;
    subject.appendChild(link);
    subject.appendChild(el("span", "muted small", ticket.reason.replace(/_/g, " ")));
    tr.appendChild(subject);

    var status = el("td");
    status.appendChild(el("span", "badge status-" + ticket.status, ticket.status.replace(/_/g, " ")));
    tr.appendChild(status);
    var priority = el("td");
    priority.appendChild(el("span", "badge priority-" + ticket.priority, ticket.priority));
    tr.appendChild(priority);
    tr.appendChild(el("td", "", ticket.channel));
    var language = el("td");
    var code = el("abbr", "", ticket.language);
    code.title = ticket.language_name;
    code.setAttribute("data-language", ticket.language);
    language.appendChild(code);
    tr.appendChild(language);
    tr.appendChild(el("td", "", ticket.assignee || "\u2014"));
    tr.appendChild(el("td", "nowrap small muted", ticket.created));
    return tr;
  }

  function startQueue(table) {
    var api = table.getAttribute("data-queue-api");
    var seconds = Math.max(2, parseFloat(table.getAttribute("data-poll-seconds")) || 10);
    var tbody = table.querySelector("tbody");
    var empty = document.querySelector("[data-queue-empty]");
    var status = document.getElementById("live-status");
    var known = {};
    tbody.querySelectorAll("tr[data-ticket]").forEach(function (tr) { known[tr.getAttribute("data-ticket")] = true; });

    function apply(data) {
      var fresh = document.createDocumentFragment();
      var added = 0;
      var seen = {};
      data.tickets.forEach(function (ticket) {
        var isNew = !known[ticket.id];
        if (isNew) added += 1;
        seen[ticket.id] = true;
        fresh.appendChild(queueRow(ticket, isNew));
      });
      known = seen;
      tbody.replaceChildren(fresh);
      if (empty) empty.classList.toggle("hidden", data.tickets.length > 0);
      Object.keys(data.counts).forEach(function (name) {
        replaceText(document.querySelector('[data-count="' + name + '"]'), data.counts[name]);
      });
      if (status) {
        var time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
        status.textContent = (added ? added + " new ticket" + (added > 1 ? "s" : "") + " \u00b7 " : "") + "updated " + time;
      }
    }

    function poll() {
      fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); throw new Error("signed out"); }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(apply)
        .catch(function () { if (status) status.textContent = "Live updates paused (connection problem); retrying."; })
        .finally(function () { window.setTimeout(poll, seconds * 1000); });
    }
    window.setTimeout(poll, seconds * 1000);
  }

  /* ---- ticket page ----------------------------------------------------------------------- */

  function insertInto(targetId, text) {
    var target = document.getElementById(targetId);
    if (!target) return;
    var current = target.value.replace(/\s+$/, "");
    target.value = current ? current + "\n\n" + text : text;
    target.focus();
    target.setSelectionRange(target.value.length, target.value.length);
  }

  function bindInsertButtons(root) {
    root.querySelectorAll("button[data-insert]").forEach(function (button) {
      if (button.dataset.bound) return;
      button.dataset.bound = "1";
      button.addEventListener("click", function () {
        insertInto(button.getAttribute("data-insert"), button.getAttribute("data-text") || "");
      });
    });
  }

  function startKbSearch(input) {
    var results = document.getElementById("kb-results");
    var initial = Array.prototype.slice.call(results.childNodes);
    var timer = null;
    var department = input.getAttribute("data-department") || "";
    var language = input.getAttribute("data-language") || "";
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var q = input.value.trim();
        if (!q) { results.replaceChildren.apply(results, initial); return; }
        var url = "/console/api/kb?q=" + encodeURIComponent(q) + "&department=" + encodeURIComponent(department) +
          "&language=" + encodeURIComponent(language);
        fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : { results: [] }; })
          .then(function (data) {
            var fragment = document.createDocumentFragment();
            data.results.forEach(function (item) {
              var row = el("div", "canned-item");
              var info = el("div");
              info.appendChild(el("div", "q", item.question));
              info.appendChild(el("div", "id", item.id + " \u00b7 " + item.department));
              row.appendChild(info);
              var button = el("button", "secondary", "Insert");
              button.type = "button";
              button.setAttribute("data-insert", results.getAttribute("data-target"));
              button.setAttribute("data-text", item.text);
              row.appendChild(button);
              fragment.appendChild(row);
            });
            if (!data.results.length) fragment.appendChild(el("p", "muted small", "No KB answer contains these words."));
            results.replaceChildren(fragment);
            bindInsertButtons(results);
          });
      }, 250);
    });
  }

  function startStatusForm(form) {
    var select = form.querySelector("#status-select");
    var panels = form.querySelectorAll("[data-when-status]");
    var checkbox = form.querySelector("#notify");
    var message = form.querySelector("#resolution-message");
    function sync() {
      for (var i = 0; i < panels.length; i++) {
        panels[i].classList.toggle("hidden", select.value !== panels[i].getAttribute("data-when-status"));
      }
      if (checkbox && message) message.classList.toggle("hidden", !checkbox.checked);
    }
    select.addEventListener("change", sync);
    if (checkbox) checkbox.addEventListener("change", sync);
    sync();
  }

  function startDeliveryRefresh(list) {
    var api = list.getAttribute("data-deliveries-api");
    var tries = 0;
    function pending() {
      return list.querySelectorAll('[data-delivery-for].delivery-pending, [data-delivery-for].delivery-sending').length;
    }
    function poll() {
      if (!pending() || tries > 60) return;
      tries += 1;
      fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
        .then(function (data) {
          data.messages.forEach(function (m) {
            var badge = list.querySelector('[data-delivery-for="' + m.id + '"]');
            if (!badge) return;
            badge.className = "badge delivery-" + m.status;
            replaceText(badge, m.status);
            badge.title = m.error;
            var error = list.querySelector('[data-delivery-error-for="' + m.id + '"]');
            if (error && m.status === "failed" && m.error) {
              error.textContent = "Not delivered: " + m.error;
              error.classList.remove("hidden");
            }
          });
        })
        .finally(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 3000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var queue = document.querySelector("table[data-queue-api]");
    if (queue) startQueue(queue);
    bindInsertButtons(document);
    var search = document.getElementById("kb-search");
    if (search) startKbSearch(search);
    var statusForm = document.getElementById("status-form");
    if (statusForm) startStatusForm(statusForm);
    var timeline = document.querySelector("[data-deliveries-api]");
    if (timeline) startDeliveryRefresh(timeline);
  });
})();
