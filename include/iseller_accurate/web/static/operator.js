// Operator pages: filters, selection, Refresh, and live status of refreshed rows.
//
// Refresh posts the row ids to api/refresh; the server clears the failed task instances that own
// them through Airflow's REST API as the signed-in user. The rows are then polled (api/<kind>?ids=)
// until Airflow has run the task again, and their cells are updated in place.
(function () {
  "use strict";
  var kind = document.body.getAttribute("data-kind");
  var listUrl = kind === "documents" ? "api/documents" : "api/webhook-events";
  var BUSY = ["posting", "pending", "processing"];
  var POLL_MS = 2500;
  var POLL_LIMIT_MS = 15 * 60 * 1000;

  // -- filters: a changed select or date applies at once --------------------------------------
  document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });

  // -- selection --------------------------------------------------------------------------------
  var selectAll = document.getElementById("select-all");
  var refreshSelected = document.getElementById("refresh-selected");
  var selectedCount = document.getElementById("selected-count");

  function checkboxes() { return Array.prototype.slice.call(document.querySelectorAll(".row-select")); }
  function selectedIds() {
    return checkboxes().filter(function (c) { return c.checked; }).map(function (c) { return Number(c.value); });
  }
  function updateSelection() {
    var n = selectedIds().length;
    refreshSelected.disabled = n === 0;
    selectedCount.textContent = n ? "(" + n + ")" : "";
    var boxes = checkboxes();
    selectAll.checked = boxes.length > 0 && n === boxes.length;
    selectAll.indeterminate = n > 0 && n < boxes.length;
  }
  selectAll.addEventListener("change", function () {
    checkboxes().forEach(function (c) { c.checked = selectAll.checked; });
    updateSelection();
  });
  document.addEventListener("change", function (e) {
    if (e.target.classList && e.target.classList.contains("row-select")) { updateSelection(); }
  });
  updateSelection();

  // -- messages ---------------------------------------------------------------------------------
  var messages = document.getElementById("messages");
  function say(text, level) {
    var div = document.createElement("div");
    div.className = "banner " + (level || "info");
    div.textContent = text;
    messages.appendChild(div);
    return div;
  }

  // -- refresh ------------------------------------------------------------------------------------
  function rowOf(id) { return document.querySelector('tr[data-id="' + id + '"]'); }

  function refresh(ids) {
    if (!ids.length) { return; }
    messages.textContent = "";
    ids.forEach(function (id) {
      var tr = rowOf(id);
      if (tr) {
        tr.classList.add("refreshing");
        var b = tr.querySelector(".refresh");
        if (b) { b.disabled = true; }
      }
    });
    fetch("api/refresh", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ kind: kind, ids: ids })
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) { return { resp: resp, body: body }; });
    }).then(function (r) {
      if (!r.resp.ok) {
        say("Refresh refused: " + (r.body.detail || ("HTTP " + r.resp.status)), "error");
        ids.forEach(function (id) { settle(id); });
        return;
      }
      var watched = [];
      (r.body.runs || []).forEach(function (run) {
        say(run.message, run.ok ? "success" : "error");
        run.ids.forEach(function (id) {
          if (run.ok) {
            watched.push(id);
            var tr = rowOf(id);
            if (tr) { setBadge(tr, "refreshing", "Refresh queued"); }
          } else { settle(id); }
        });
      });
      (r.body.skipped || []).forEach(function (s) { say("Row " + s.id + ": " + s.reason, "warning"); settle(s.id); });
      if (watched.length) { watch(watched, companionsOf(watched)); }
    }).catch(function (err) {
      say("Refresh failed: " + err, "error");
      ids.forEach(function (id) { settle(id); });
    });
  }

  function settle(id) {
    var tr = rowOf(id);
    if (!tr) { return; }
    tr.classList.remove("refreshing");
    var b = tr.querySelector(".refresh");
    if (b) { b.disabled = false; }
  }

  function setBadge(tr, status, label) {
    var badge = tr.querySelector('[data-field="status"]');
    if (!badge) { return; }
    badge.className = "badge state-" + status;
    badge.textContent = label;
  }

  function setText(tr, field, value) {
    var cell = tr.querySelector('[data-field="' + field + '"]');
    if (cell) { cell.textContent = value == null ? "" : value; }
  }

  function update(tr, row) {
    tr.setAttribute("data-status", row.status);
    setBadge(tr, row.status, row.status_label);
    setText(tr, "reason", row.reason);
    setText(tr, "attempts", row.attempts);
    setText(tr, "last_attempt", (row.last_attempt_local || "").slice(0, 16));
    setText(tr, "target_number", row.target_number);
    setText(tr, "iseller_reference", row.iseller_reference);
    var link = tr.querySelector('[data-field="task"]');
    if (link && row.ti_url && link.tagName === "A") {
      link.href = row.ti_url;
      link.textContent = row.task_id;
    }
    setText(tr, "try", row.try_number ? " · try " + row.try_number : "");
    var button = tr.querySelector(".refresh");
    if (button) { button.hidden = !row.refreshable; }
    var box = tr.querySelector(".row-select");
    if (box && !row.refreshable) { box.checked = false; box.hidden = true; }
  }

  // The chips (failed / blocked / pending counts) of the current filters, re-read after a refresh.
  function refreshCounts() {
    var query = new URLSearchParams(window.location.search);
    query.delete("after");
    query.delete("before");
    query.set("size", "1");
    fetch(listUrl + "?" + query.toString(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (body) {
        if (!body || !body.counts) { return; }
        Object.keys(body.counts).forEach(function (status) {
          var chip = document.querySelector('[data-count-status="' + status + '"] .chip-count');
          if (!chip) { return; }
          chip.textContent = body.counts[status].toLocaleString("en-US");
          chip.parentNode.classList.toggle("zero", body.counts[status] === 0);
        });
      })
      .catch(function () { /* the counts stay as they were */ });
  }

  // Other open rows on the page from the same DAG runs (e.g. a receipt blocked by a refreshed invoice):
  // the re-run task handles them too, so they are re-read with the refreshed rows.
  function companionsOf(ids) {
    var runs = {};
    ids.forEach(function (id) { var tr = rowOf(id); if (tr) { runs[tr.getAttribute("data-run")] = true; } });
    var open = ["failed", "blocked", "pending", "posting", "processing"];
    return Array.prototype.slice.call(document.querySelectorAll("tbody tr[data-id]")).filter(function (tr) {
      return runs[tr.getAttribute("data-run")] && open.indexOf(tr.getAttribute("data-status")) >= 0 &&
        ids.indexOf(Number(tr.getAttribute("data-id"))) < 0;
    }).map(function (tr) { return Number(tr.getAttribute("data-id")); });
  }

  // Poll the refreshed rows until Airflow has run their task again (the row changed and is not busy);
  // companions are updated along the way, and once more at the end.
  function watch(ids, companions) {
    var started = Date.now();
    var before = {};
    ids.concat(companions).forEach(function (id) {
      var tr = rowOf(id);
      before[id] = tr ? tr.getAttribute("data-updated") : null;
    });
    var pending = ids.slice();
    var others = companions.slice();
    function tick() {
      if (!pending.length && !others.length) { updateSelection(); refreshCounts(); return; }
      if (Date.now() - started > POLL_LIMIT_MS) {
        say("Still waiting for Airflow after 15 minutes; reload the page later.", "warning");
        return;
      }
      var asked = pending.concat(others);
      var url = listUrl + "?size=" + asked.length + "&ids=" + asked.join(",");
      var last = !pending.length;  // the refreshed rows are done: one last look at the companions
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (resp) { return resp.ok ? resp.json() : { rows: [] }; })
        .then(function (body) {
          (body.rows || []).forEach(function (row) {
            var tr = rowOf(row.id);
            if (!tr) { return; }
            var changed = row.updated_at !== before[row.id];
            if (changed && BUSY.indexOf(row.status) < 0) {
              update(tr, row);
              tr.setAttribute("data-updated", row.updated_at);
              settle(row.id);
              pending = pending.filter(function (id) { return id !== row.id; });
              others = others.filter(function (id) { return id !== row.id; });
            } else if (changed) {
              setBadge(tr, row.status, row.status_label);
            }
          });
          if (last) { others = []; }
          updateSelection();
          window.setTimeout(tick, POLL_MS);
        })
        .catch(function () { window.setTimeout(tick, POLL_MS * 2); });
    }
    window.setTimeout(tick, POLL_MS);
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button.refresh");
    if (button) { refresh([Number(button.getAttribute("data-id"))]); }
  });
  refreshSelected.addEventListener("click", function () { refresh(selectedIds()); });
})();
