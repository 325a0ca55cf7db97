// Small conveniences of the UI: copy buttons, sample tabs, auto-submitting filters,
// the Deploy wizard's rule-dependent fields. Every page works without them.
(function () {
  "use strict";
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var target = document.querySelector(button.dataset.copy);
      if (!target) { return; }
      var text = target.textContent;
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done);
      } else {
        var area = document.createElement("textarea");
        area.value = text; document.body.appendChild(area); area.select();
        document.execCommand("copy"); document.body.removeChild(area); done();
      }
    });
  });
  document.querySelectorAll("[data-sample]").forEach(function (tab) {
    tab.addEventListener("click", function () {
      document.querySelectorAll("[data-sample]").forEach(function (t) {
        t.classList.toggle("active", t === tab);
      });
      document.querySelectorAll("[data-sample-block]").forEach(function (block) {
        block.hidden = block.dataset.sampleBlock !== tab.dataset.sample;
      });
    });
  });
  document.querySelectorAll(".autosubmit").forEach(function (input) {
    input.addEventListener("change", function () {
      if (input.form.requestSubmit) { input.form.requestSubmit(); } else { input.form.submit(); }
    });
  });
})();
