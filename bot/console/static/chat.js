// The citizens' chat. Every text from the server is inserted with textContent, never as HTML.
(function () {
  "use strict";
  var POLL_MS = 5000;
  var token = document.querySelector("meta[name=chat-token]").getAttribute("content");
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-text");
  var send = document.getElementById("chat-send");
  var status = document.getElementById("chat-status");
  var shown = {};   // message ids already on screen
  var pending = {}; // client_id -> line typed here whose message id is not known yet
  var after = 0;    // highest message id seen

  function setStatus(text, isError) {
    status.textContent = text || "";
    status.className = "chat-status" + (isError ? " error" : "");
  }

  function add(direction, text, author, id) {
    if (id !== undefined && id !== null) {
      if (shown[id]) { return; }
      shown[id] = true;
      if (id > after) { after = id; }
    }
    var li = document.createElement("li");
    li.className = "line " + direction + (author ? " " + author : "");
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    if (author === "agent") {
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = "City staff";
      bubble.appendChild(who);
    }
    bubble.appendChild(document.createTextNode(text));
    li.appendChild(bubble);
    log.appendChild(li);
    li.scrollIntoView({block: "end"});
    return li;
  }

  function request(method, url, body) {
    var options = {method: method, credentials: "same-origin", headers: {"X-Chat-Token": token, "Accept": "application/json"}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.detail || "Something went wrong. Please try again.");
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function clientId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return "m" + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }

  function poll() {
    return request("GET", "/chat/messages?after=" + after).then(function (data) {
      (data.messages || []).forEach(function (m) {
        if (m.client_id && pending[m.client_id]) {
          shown[m.id] = true;
          if (m.id > after) { after = m.id; }
          return;
        }
        add(m.direction, m.text, m.direction === "out" ? m.author : null, m.id);
      });
    }).catch(function (error) {
      if (error.status === 403) { setStatus(error.message, true); }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) { return; }
    send.disabled = true;
    setStatus("Sending\u2026");
    var mine = add("in", text, null);
    var id = clientId();
    pending[id] = mine;
    request("POST", "/chat/messages", {text: text, client_id: id}).then(function (data) {
      shown[data.message_id] = true;
      if (data.message_id > after) { after = data.message_id; }
      (data.replies || []).forEach(function (r) { add("out", r.text, "assistant", r.id); });
      input.value = "";
      setStatus("");
    }).catch(function (error) {
      mine.classList.add("failed");
      setStatus(error.message, true);
    }).then(function () {
      send.disabled = false;
      input.focus();
    });
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  poll();
  setInterval(function () { if (!document.hidden) { poll(); } }, POLL_MS);
})();
