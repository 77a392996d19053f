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
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status === 422) return;
    showError("エラーが発生しました（" + status + "）。時間をおいて再度お試しください。");
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
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("htmx-error");
    if (box) box.hidden = true;
  });
})();
