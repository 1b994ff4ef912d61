/*
 * Customer form behaviours (no inline scripts: CSP).
 *
 * - [data-formset-add="<prefix>"] buttons append a copy of <template data-formset-template="<prefix>">
 *   to [data-formset-rows="<prefix>"], numbering it from <prefix>-TOTAL_FORMS.
 * - Inputs with data-dup-param="phone|email|account_id" carry hx-get to the duplicate lookup; before
 *   each request the parameters become {<param>: value} (plus platform for an account ID), and the
 *   result goes to the row's #dup-<input name> box.
 */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-formset-add]");
    if (!button) {
      return;
    }
    var prefix = button.dataset.formsetAdd;
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var template = document.querySelector('template[data-formset-template="' + prefix + '"]');
    var rows = document.querySelector('[data-formset-rows="' + prefix + '"]');
    if (!total || !template || !rows) {
      return;
    }
    var index = parseInt(total.value, 10) || 0;
    var wrapper = document.createElement("div");
    wrapper.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index));
    var row = wrapper.firstElementChild;
    while (wrapper.firstChild) {
      rows.appendChild(wrapper.firstChild);
    }
    total.value = String(index + 1);
    if (window.htmx && row) {
      window.htmx.process(row);
    }
    var first = row && row.querySelector("input:not([type=hidden]), select");
    if (first) {
      first.focus();
    }
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var el = event.detail.elt;
    if (!el || !el.dataset || !el.dataset.dupParam) {
      return;
    }
    var params = {};
    params[el.dataset.dupParam] = el.value;
    if (el.dataset.dupParam === "account_id") {
      var row = el.closest("[data-formset-form]");
      var platform = row && row.querySelector("[data-dup-platform]");
      if (platform) {
        params.platform = platform.value;
      }
    }
    var form = el.closest("form");
    var exclude = form && form.dataset.customerId;
    if (exclude) {
      params.exclude = exclude;
    }
    event.detail.parameters = params;
  });
})();
