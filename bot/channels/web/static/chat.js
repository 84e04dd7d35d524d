// The citizens' chat. Every text from the server is inserted with textContent, never as HTML.
(function () {
  "use strict";
  var POLL_MS = 5000;
  var token = document.querySelector("meta[name=chat-token]").getAttribute("content");
  var log = document.getElementById("chat-log");
  var words = log.dataset; // the page's texts, from the server's catalogue
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-text");
  var send = document.getElementById("chat-send");
  var status = document.getElementById("chat-status");
  var shown = {};   // message ids already on screen
  var pending = {}; // client_id -> line typed here whose message id is not known yet
  var after = 0;    // highest message id seen
  var offer = null; // the buttons of the latest "Do you mean ...?" reply while it is the last line

  function setStatus(text, isError) {
    status.textContent = text || "";
    status.className = "chat-status" + (isError ? " error" : "");
  }

  // A newer line ends the offer on screen: its buttons go (the text still lists the numbers),
  // unless one was tapped, which stays visible, disabled, to show what was chosen.
  function retireOffer() {
    if (!offer) { return; }
    if (!offer.picked && offer.group.parentNode) { offer.group.parentNode.removeChild(offer.group); }
    offer = null;
  }

  function setOfferDisabled(state, disabled) {
    state.buttons.forEach(function (b) { b.disabled = disabled; });
    state.group.setAttribute("aria-disabled", disabled ? "true" : "false");
  }

  function showChoices(li, choices) {
    var options = choices && choices.options;
    if (!options || !options.length) { return; }
    var group = document.createElement("div");
    group.className = "choices";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", words.choicesLabel);
    var state = {group: group, buttons: [], picked: false};
    options.forEach(function (option) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "choice" + (option.n === 0 ? " none" : "");
      button.textContent = option.title;
      button.addEventListener("click", function () { choose(state, button, option); });
      state.buttons.push(button);
      group.appendChild(button);
    });
    li.appendChild(group);
    offer = state;
  }

  function add(direction, text, author, id, choices) {
    if (id !== undefined && id !== null) {
      if (shown[id]) { return; }
      shown[id] = true;
      if (id > after) { after = id; }
    }
    retireOffer();
    var li = document.createElement("li");
    li.className = "line " + direction + (author ? " " + author : "");
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    if (author === "agent") {
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = words.staff;
      bubble.appendChild(who);
    }
    bubble.appendChild(document.createTextNode(text));
    li.appendChild(bubble);
    if (direction === "out") { showChoices(li, choices); }
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
          var error = new Error(data.detail || words.failed);
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
        add(m.direction, m.text, m.direction === "out" ? m.author : null, m.id, m.choices);
      });
    }).catch(function (error) {
      if (error.status === 403) { setStatus(error.message, true); }
    });
  }

  // One message to the server: what the citizen typed, or the title of the button tapped
  // with its choice. Resolves true when it was delivered.
  function post(text, choice) {
    var mine = add("in", text, null);
    var id = clientId();
    pending[id] = mine;
    var body = {text: text, client_id: id};
    // A hint for the core, when the message alone is too short to tell its language.
    if (navigator.language) { body.language = String(navigator.language).slice(0, 35); }
    if (choice) { body.choice = choice; }
    setStatus(words.sending);
    return request("POST", "/chat/messages", body).then(function (data) {
      shown[data.message_id] = true;
      if (data.message_id > after) { after = data.message_id; }
      (data.replies || []).forEach(function (r) { add("out", r.text, "assistant", r.id, r.choices); });
      setStatus("");
      return true;
    }).catch(function (error) {
      mine.classList.add("failed");
      setStatus(error.message, true);
      return false;
    });
  }

  function choose(state, button, option) {
    if (state.picked) { return; }
    state.picked = true;
    setOfferDisabled(state, true);
    button.classList.add("chosen");
    button.setAttribute("aria-pressed", "true");
    post(option.title, option.choice).then(function (ok) {
      if (ok) { return; }
      // Not delivered (a lost connection, too many messages): the citizen may tap again.
      state.picked = false;
      button.classList.remove("chosen");
      button.removeAttribute("aria-pressed");
      setOfferDisabled(state, false);
      if (!offer) { offer = state; }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) { return; }
    send.disabled = true;
    post(text, null).then(function (ok) {
      if (ok) { input.value = ""; }
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
