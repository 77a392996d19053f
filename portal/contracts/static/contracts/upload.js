// Drag and drop onto the upload zone, and a progress bar while htmx posts the files.
(function () {
  "use strict";
  document.addEventListener("dragover", function (event) {
    var zone = event.target.closest && event.target.closest(".dropzone");
    if (zone) { event.preventDefault(); zone.classList.add("dragging"); }
  });
  document.addEventListener("dragleave", function (event) {
    var zone = event.target.closest && event.target.closest(".dropzone");
    if (zone) zone.classList.remove("dragging");
  });
  document.addEventListener("drop", function (event) {
    var zone = event.target.closest && event.target.closest(".dropzone");
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("dragging");
    var input = zone.querySelector("input[type=file]");
    input.files = event.dataTransfer.files;
    htmx.trigger(zone.closest("form"), "submit");
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = event.target.querySelector && event.target.querySelector("progress.upload-progress");
    if (bar && event.detail.lengthComputable) {
      bar.hidden = false;
      bar.value = (event.detail.loaded / event.detail.total) * 100;
    }
  });
})();
