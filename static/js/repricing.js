/* Repricing pages: progressive enhancement only (every form works without it).
 *
 * - Rule form: show only the options that apply (the offset when beating/staying above, the
 *   competitors for "named competitors", a section's fields once it is switched on).
 * - SKU list: "select every SKU on this page" and a live count of the selection; a large bulk
 *   assignment runs through the API in batches with a progress bar (Idempotency-Key per batch).
 * Loaded with `defer` from /static (strict nonce CSP: no inline scripts or handlers).
 */
(function () {
  "use strict";

  // --- Rule form ---------------------------------------------------------------------------------
  var ruleForm = document.querySelector("[data-rule-form]");
  if (ruleForm) {
    var value = function (name) {
      var field = ruleForm.elements.namedItem(name);
      if (!field) {
        return "";
      }
      if (field.type === "checkbox") {
        return field.checked ? "on" : "";
      }
      return field.value;
    };
    var show = function (name, visible) {
      var item = ruleForm.querySelector('[data-field="' + name + '"]');
      if (item) {
        // Never hide a field that carries an error: the seller has to see it.
        item.hidden = !visible && !item.querySelector(".errorlist");
      }
    };
    var sections = {
      probe_enabled: ["probe_unit", "probe_step", "probe_when_sharing", "probe_sharing_below"],
      velocity_enabled: [
        "velocity_target_units_7d",
        "velocity_raise_percent",
        "velocity_lower_percent",
        "velocity_tolerance_percent",
      ],
      inventory_enabled: [
        "low_days_of_cover",
        "inventory_raise_percent",
        "high_days_of_cover",
        "inventory_lower_percent",
        "aged_units_min",
        "aged_lower_percent",
      ],
      schedule_enabled: ["schedule_timezone", "schedule_entries"],
      price_war_enabled: ["price_war_undercuts", "price_war_window_minutes", "price_war_pause_minutes"],
    };
    var refresh = function () {
      var kind = value("strategy_kind");
      var mode = value("strategy_mode");
      var offset = kind !== "current" && mode !== "match";
      show("strategy_mode", kind !== "current");
      show("strategy_unit", offset);
      show("strategy_offset", offset);
      show("competitors", kind === "named_competitors");
      show("when_no_buy_box", kind === "buy_box");
      show("when_alone", kind !== "current");
      Object.keys(sections).forEach(function (toggle) {
        var on = value(toggle) === "on";
        sections[toggle].forEach(function (name) {
          show(name, on);
        });
      });
    };
    ruleForm.addEventListener("change", refresh);
    refresh();
  }

  // --- SKU list: selection and batched bulk assignment ---------------------------------------------
  var bulkForm = document.querySelector("[data-bulk-form]");
  if (!bulkForm) {
    return;
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-select-row]"));
  var all = document.querySelector("[data-select-all]");
  var counter = bulkForm.querySelector("[data-selection-count]");
  var allMatching = bulkForm.elements.namedItem("all_matching");
  var ticked = function () {
    return rows.filter(function (box) {
      return box.checked;
    });
  };
  var updateCount = function () {
    var n = ticked().length;
    if (counter) {
      counter.textContent = allMatching && allMatching.checked ? "" : n + " selected";
    }
    if (all) {
      all.checked = n > 0 && n === rows.length;
      all.indeterminate = n > 0 && n < rows.length;
    }
  };
  if (all) {
    all.addEventListener("change", function () {
      rows.forEach(function (box) {
        box.checked = all.checked;
      });
      updateCount();
    });
  }
  rows.forEach(function (box) {
    box.addEventListener("change", updateCount);
  });
  if (allMatching) {
    allMatching.addEventListener("change", updateCount);
  }
  updateCount();

  var BATCH = 100;
  bulkForm.addEventListener("submit", function (event) {
    var selected = ticked().map(function (box) {
      return box.value;
    });
    var rule = bulkForm.elements.namedItem("rule").value;
    // The API path is for the ticked rows; "all matching" and small selections post the form as is.
    var reprice = event.submitter && event.submitter.value === "reprice";
    if (
      reprice ||
      (allMatching && allMatching.checked) ||
      selected.length <= BATCH ||
      !rule ||
      !window.SellerPilot
    ) {
      return;
    }
    event.preventDefault();
    var progress = document.createElement("progress");
    progress.className = "bulk__progress";
    progress.max = selected.length;
    progress.value = 0;
    counter.textContent = "Assigning… 0 of " + selected.length;
    counter.parentNode.insertBefore(progress, counter);
    var done = 0;
    var batches = [];
    for (var i = 0; i < selected.length; i += BATCH) {
      batches.push(selected.slice(i, i + BATCH));
    }
    var operation = String(Date.now()) + "-" + Math.random().toString(16).slice(2);
    batches
      .reduce(function (chain, batch, index) {
        return chain.then(function () {
          return window.SellerPilot.api("/api/v1/repricing/skus/assign-rule", {
            method: "POST",
            headers: { "Content-Type": "application/json", "Idempotency-Key": operation + "-" + index },
            body: JSON.stringify({ listings: batch, rule: rule === "none" ? null : rule }),
          }).then(function (response) {
            if (!response.ok) {
              throw new Error("HTTP " + response.status);
            }
            done += batch.length;
            progress.value = done;
            counter.textContent = "Assigning… " + done + " of " + selected.length;
          });
        });
      }, Promise.resolve())
      .then(function () {
        window.location.reload();
      })
      .catch(function (error) {
        counter.textContent =
          "Stopped after " + done + " of " + selected.length + " (" + error.message + "). Reload to see the state.";
      });
  });
})();
