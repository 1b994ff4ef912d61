/* Chained province -> city -> district selects (crm/core/forms.py RegionSelectWidget).
 *
 * Each select carries hx-get="/regions/children/" and hx-target="#<next select>". With htmx 2 loaded,
 * htmx makes the request and this file only renames the parameter to ?parent=<code> and clears the
 * district when the province changes. Without htmx, the same is done with fetch(). Without
 * JavaScript the selects still show the saved value.
 */
(function () {
  "use strict";

  var SELECTOR = "select[data-region-level][hx-get]";

  function resetDependants(select) {
    var reset = select.getAttribute("data-region-reset");
    var target = reset && document.querySelector(reset);
    if (target) {
      var first = target.options.length ? target.options[0].cloneNode(true) : null;
      target.innerHTML = "";
      if (first) {
        first.value = "";
        first.textContent = "---------";
        target.appendChild(first);
      }
    }
  }

  function usesHtmx() {
    return !!(window.htmx && String(window.htmx.version || "").charAt(0) === "2");
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.matches && elt.matches(SELECTOR)) {
      event.detail.parameters = { parent: elt.value };
      resetDependants(elt);
    }
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (usesHtmx() || !select.matches || !select.matches(SELECTOR)) {
      return;
    }
    var target = document.querySelector(select.getAttribute("hx-target"));
    if (!target) {
      return;
    }
    resetDependants(select);
    var url = select.getAttribute("hx-get") + "?parent=" + encodeURIComponent(select.value);
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        return response.ok ? response.text() : "";
      })
      .then(function (html) {
        if (html) {
          target.innerHTML = html;
        }
      });
  });
})();
