/*
 * Quote form: the SKU inputs (list="quote-products") suggest products as you type. The options
 * come from the datalist's data-options-url (?q=<text>), at most one request per 250 ms.
 * Without JavaScript the field still accepts an exact SKU. No inline scripts (CSP).
 */
(function () {
  "use strict";

  var timer = null;
  var lastTerm = "";

  function load(list, term) {
    var url = list.dataset.optionsUrl + "?q=" + encodeURIComponent(term);
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        return response.ok ? response.text() : "";
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString("<datalist>" + html + "</datalist>", "text/html");
        var options = doc.querySelectorAll("option");
        list.replaceChildren.apply(list, Array.prototype.slice.call(options));
      })
      .catch(function () {});
  }

  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input || input.getAttribute("list") !== "quote-products") {
      return;
    }
    var list = document.getElementById("quote-products");
    var term = input.value.trim();
    if (!list || !term || term === lastTerm) {
      return;
    }
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      lastTerm = term;
      load(list, term);
    }, 250);
  });
})();
