// KB proposal forms: show the answer/department fields for a new entry, the entry list for a phrasing.
(function () {
  "use strict";
  function sync(form) {
    var checked = form.querySelector("input[name=kind]:checked");
    var kind = checked ? checked.value : "new_entry";
    form.querySelectorAll(".kind-fields").forEach(function (el) {
      el.hidden = el.getAttribute("data-kind") !== kind;
    });
  }
  document.querySelectorAll("form.proposal-form").forEach(function (form) {
    sync(form);
    form.querySelectorAll("input[data-kind-toggle]").forEach(function (radio) {
      radio.addEventListener("change", function () { sync(form); });
    });
  });
})();
