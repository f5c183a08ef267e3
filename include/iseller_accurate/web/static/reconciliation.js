// Reconciliation day page: the Re-post buttons (a JSON POST; Airflow checks the user's permission).
(function () {
  "use strict";
  var messages = document.getElementById("messages");

  function say(text, kind) {
    var div = document.createElement("div");
    div.className = "banner " + (kind || "info");
    div.setAttribute("data-message", kind || "info");
    div.textContent = text;
    messages.appendChild(div);
  }

  document.querySelectorAll("button.repost").forEach(function (button) {
    button.addEventListener("click", function () {
      var id = parseInt(button.getAttribute("data-id"), 10);
      button.disabled = true;
      fetch("api/reconciliation/repost", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ ids: [id] })
      }).then(function (resp) {
        return resp.json().then(function (body) { return { status: resp.status, body: body }; });
      }).then(function (answer) {
        var body = answer.body || {};
        if (answer.status === 200 && body.ok) {
          say(body.message, "info");
          button.textContent = "Re-post requested";
        } else {
          say(body.message || body.detail || ("HTTP " + answer.status), "warning");
          button.disabled = false;
        }
      }).catch(function (err) {
        say("The request failed: " + err, "warning");
        button.disabled = false;
      });
    });
  });
  document.body.setAttribute("data-ready", "1");  // the buttons work from here on
})();
