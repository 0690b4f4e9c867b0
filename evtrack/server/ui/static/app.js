// evtrack UI: small progressive enhancements; every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // "Select all" checkbox of the runs table.
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input.run-select").forEach(function (box) {
        box.checked = all.checked;
      });
      updateCompare();
    });
  }
  document.querySelectorAll("input.run-select").forEach(function (box) {
    box.addEventListener("change", updateCompare);
  });

  // Ask before a destructive form is sent.
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });

  updateCompare();
});

// Show how many runs the Compare button will send.
function updateCompare() {
  var button = document.getElementById("compare-button");
  if (!button) {
    return;
  }
  var n = document.querySelectorAll("input.run-select:checked").length;
  button.textContent = n ? "Compare " + n + " selected run" + (n === 1 ? "" : "s") : "Compare selected runs";
}
