// Small behaviours on top of htmx: visible errors instead of silent failures.
(function () {
  "use strict";
  function showError(message) {
    var box = document.getElementById("htmx-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }
  // The server's error partial (errors/_inline.html) says what happened and what to do: show its words.
  function errorText(xhr) {
    if (!xhr || !xhr.responseText) return "";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var box = doc.querySelector("[data-error-message]") || doc.querySelector(".error-page");
      if (!box) return "";
      var parts = Array.prototype.map.call(box.querySelectorAll("p, h1"), function (p) { return p.textContent; });
      return (parts.length ? parts.join(" ") : box.textContent).replace(/\s+/g, " ").trim();
    } catch (e) {
      return "";
    }
  }
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status === 422) return;
    showError(errorText(xhr) || "処理できませんでした。画面を再読み込みしてから、もう一度お試しください。");
  });
  document.addEventListener("htmx:sendError", function () {
    showError("通信できませんでした。ネットワーク接続を確認して再度お試しください。");
  });
  // Live validation swaps only a field's error block (not the input, so typing is never lost):
  // keep each such input's aria-invalid and its field's error style in step with its error block.
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll('[hx-target$="-error"]').forEach(function (input) {
      var block = document.getElementById(input.id + "-error");
      if (!block) return;
      var invalid = block.querySelector(".error") !== null;
      if (invalid) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
      var field = block.closest(".field");
      if (field) field.classList.toggle("has-error", invalid);
    });
  });
  // A column header of the search results sorts what the search form holds now. Its own link would sort
  // the list shown, and a search typed a moment before (still in its 400 ms pause) would then arrive after
  // the sort and undo it; the form's request carries both (a later one from the form waits for it).
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("#search-results a[data-sort]") : null;
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var form = document.querySelector("form.search-form");
    if (!form || !window.htmx || !form.elements.sort || !form.elements.order) return;
    event.preventDefault();
    event.stopPropagation();  // capture phase: the link's own htmx request is not sent
    form.elements.sort.value = link.getAttribute("data-sort");
    form.elements.order.value = link.getAttribute("data-order");
    window.htmx.trigger(form, "submit");
  }, true);
  var submitted = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var box = document.getElementById("htmx-error");
    if (box) box.hidden = true;
    var elt = event.detail.elt;
    if (elt && elt.tagName === "FORM") submitted = { id: elt.id, form: elt };
  });

  // A refused submit: an error summary at the top of the form (role=alert, a link to each field in
  // error) takes the focus, so that a phone shows what is wrong instead of the unchanged button.
  function fieldLabel(field, input) {
    var label = input.id ? field.querySelector('label[for="' + input.id + '"]') : null;
    return (label || field.querySelector("label, legend") || { textContent: "" }).textContent.trim();
  }
  function summarise(form) {
    var old = form.querySelector(":scope > .error-summary");
    if (old) old.remove();
    var items = [];
    form.querySelectorAll(".field.has-error").forEach(function (field) {
      var input = field.querySelector("input:not([type=hidden]), select, textarea");
      var messages = Array.prototype.map.call(field.querySelectorAll(".errors .error"), function (p) {
        return p.textContent.trim();
      }).filter(Boolean);
      if (input && messages.length) items.push({ input: input, text: fieldLabel(field, input) + "：" + messages.join(" ") });
    });
    var general = form.querySelector(".alert-error:not([hidden])") ||
      (form.parentElement && form.parentElement.querySelector(":scope > .alert-error:not([hidden])"));
    if (!items.length) {
      if (!general) return null;
      general.setAttribute("tabindex", "-1");
      return general;
    }
    var summary = document.createElement("div");
    summary.className = "error-summary";
    summary.setAttribute("role", "alert");
    summary.setAttribute("tabindex", "-1");
    var heading = document.createElement("p");
    heading.className = "error-summary-title";
    heading.textContent = "入力内容を確認してください（" + items.length + "件）";
    summary.appendChild(heading);
    var list = document.createElement("ul");
    items.forEach(function (item) {
      var link = document.createElement("a");
      link.href = "#" + item.input.id;
      link.textContent = item.text;
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var field = item.input.closest(".field") || item.input;
        field.scrollIntoView({ block: "start" });
        item.input.focus({ preventScroll: true });
      });
      var li = document.createElement("li");
      li.appendChild(link);
      list.appendChild(li);
    });
    summary.appendChild(list);
    form.insertBefore(summary, form.firstChild);
    return summary;
  }
  function bringIntoView(target) {
    if (!target) return;
    target.scrollIntoView({ block: "start" });
    target.focus({ preventScroll: true });
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!submitted) return;
    var form = (submitted.id && document.getElementById(submitted.id)) ||
      (submitted.form.isConnected ? submitted.form : null) ||
      (event.detail.target && event.detail.target.closest && event.detail.target.closest("form"));
    submitted = null;
    if (form) bringIntoView(summarise(form));
  });
  // A table wider than the screen scrolls inside itself (portal.css): let the keyboard reach it.
  function scrollableTables() {
    document.querySelectorAll("table.list").forEach(function (table) {
      if (table.scrollWidth > table.clientWidth + 1) table.setAttribute("tabindex", "0");
      else if (table.getAttribute("tabindex") === "0") table.removeAttribute("tabindex");
    });
  }
  document.addEventListener("htmx:afterSettle", scrollableTables);
  window.addEventListener("resize", scrollableTables);
  // A page answering a submit without htmx (422 with the form and its errors).
  function onLoad() {
    scrollableTables();
    var first = null;
    document.querySelectorAll("form").forEach(function (form) {
      if (!form.querySelector(".field.has-error")) return;
      var summary = summarise(form);
      if (!first) first = summary;
    });
    bringIntoView(first);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", onLoad); else onLoad();
})();
