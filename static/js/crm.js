/*
 * Small behaviours of the CRM shell. Loaded with `defer` on every page (no inline scripts: CSP).
 *
 * - data-confirm="Question?" on a <form>, <a> or <button>: ask before submitting / following.
 *   (For htmx requests use htmx's own hx-confirm attribute.)
 * - data-crm-autodismiss="6000" on a Bootstrap .alert: close it after that many milliseconds.
 * - data-crm-autosubmit on a <select>/<input> inside a form: submit the form when it changes
 *   (e.g. a filter or sort dropdown); keep a submit button for users without JavaScript.
 * - htmx requests carry the CSRF token through hx-headers on <body> (see base.html).
 * - After an htmx swap the same behaviours are applied to the new content.
 */
(function () {
  "use strict";

  function autodismiss(root) {
    root.querySelectorAll("[data-crm-autodismiss]").forEach(function (el) {
      if (el.dataset.crmAutodismissArmed) {
        return;
      }
      el.dataset.crmAutodismissArmed = "1";
      var delay = parseInt(el.dataset.crmAutodismiss, 10) || 6000;
      var timer = window.setTimeout(close, delay);
      // Keep the message while the user reads it (pointer over it or focus inside it).
      el.addEventListener("mouseenter", function () { window.clearTimeout(timer); });
      el.addEventListener("focusin", function () { window.clearTimeout(timer); });

      function close() {
        if (window.bootstrap && window.bootstrap.Alert) {
          window.bootstrap.Alert.getOrCreateInstance(el).close();
        } else {
          el.remove();
        }
      }
    });
  }

  // Confirmation dialogs: one delegated listener for clicks and one for submits.
  document.addEventListener("click", function (event) {
    var el = event.target.closest("a[data-confirm], button[data-confirm]");
    if (el && !window.confirm(el.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches && form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("[data-crm-autosubmit]") && el.form) {
      if (typeof el.form.requestSubmit === "function") {
        el.form.requestSubmit();
      } else {
        el.form.submit();
      }
    }
  });

  function init(root) {
    autodismiss(root);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.target); });

  // Close the offcanvas menu when a link inside it is followed with htmx (no full page load).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var menu = document.getElementById("crm-sidebar");
    if (menu && menu.contains(event.target) && menu.classList.contains("show") && window.bootstrap) {
      window.bootstrap.Offcanvas.getOrCreateInstance(menu).hide();
    }
  });
})();
