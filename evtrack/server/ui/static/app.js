// evtrack UI: small progressive enhancements; every page works without this file.
"use strict";

// MLflow's links ("View run X at: http://host/#/experiments/1/runs/<id>") keep the page in the
// URL's fragment, which never reaches the server: move to evtrack's page for it.
var MLFLOW_ROUTES = [
  [/^#\/experiments\/([^/?#]+)\/runs\/([^/?#]+)/, function (m) { return "/runs/" + m[2]; }],
  [/^#\/experiments\/([^/?#]+)/, function (m) { return "/experiments/" + m[1]; }],
  [/^#\/models\/([^/?#]+)\/versions\/([^/?#]+)/, function (m) { return "/models/" + m[1] + "/versions/" + m[2]; }],
  [/^#\/models\/([^/?#]+)/, function (m) { return "/models/" + m[1]; }],
  [/^#\/models\/?$/, function () { return "/models"; }],
  [/^#\/experiments\/?$/, function () { return "/experiments"; }],
];

function segment(raw) {
  // one path segment, as sent: decoded (MLflow encodes model names) and encoded again
  try {
    raw = decodeURIComponent(raw);
  } catch (e) {
    // not percent-encoded text: use it as it is
  }
  return encodeURIComponent(raw);
}

function mlflowRoute(hash) {
  for (var i = 0; i < MLFLOW_ROUTES.length; i++) {
    var m = MLFLOW_ROUTES[i][0].exec(hash);
    if (m) {
      return MLFLOW_ROUTES[i][1](m.map(function (part, j) { return j ? segment(part) : part; }));
    }
  }
  return null;
}

var mlflowTarget = mlflowRoute(window.location.hash);
if (mlflowTarget) {
  window.location.replace(mlflowTarget);
}

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
