/* Customer list (templates/customers/customer_list.html): tick all rows on the page, keep the
 * "selected rows" count, and switch the bulk scope back to "selected" when a row is ticked.
 */
(function () {
  "use strict";

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("input[data-bulk-row]"));
  }

  function refresh() {
    var ticked = rows().filter(function (box) { return box.checked; }).length;
    var counters = document.querySelectorAll("[data-bulk-selected-count]");
    Array.prototype.forEach.call(counters, function (el) { el.textContent = String(ticked); });
    var all = document.querySelector("input[data-bulk-toggle-all]");
    if (all) {
      all.checked = ticked > 0 && ticked === rows().length;
      all.indeterminate = ticked > 0 && ticked < rows().length;
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!target.matches) {
      return;
    }
    if (target.matches("input[data-bulk-toggle-all]")) {
      rows().forEach(function (box) { box.checked = target.checked; });
    }
    if (target.matches("input[data-bulk-row]") && target.checked) {
      var selected = document.getElementById("bulk-scope-selected");
      if (selected) {
        selected.checked = true;
      }
    }
    if (target.matches("input[data-bulk-row], input[data-bulk-toggle-all]")) {
      refresh();
    }
  });

  document.addEventListener("DOMContentLoaded", refresh);
})();
