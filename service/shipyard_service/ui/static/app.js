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
        t.setAttribute("aria-selected", t === tab ? "true" : "false");
      });
      document.querySelectorAll("[data-sample-block]").forEach(function (block) {
        block.hidden = block.dataset.sampleBlock !== tab.dataset.sample;
      });
    });
  });
  // Filters that apply as soon as they change; `data-clear` names a field they reset
  // (choosing a pipeline clears the deployment, and the other way round).
  document.querySelectorAll(".autosubmit").forEach(function (input) {
    input.addEventListener("change", function () {
      var form = input.form;
      if (input.dataset.clear && form.elements[input.dataset.clear]) {
        form.elements[input.dataset.clear].value = "";
      }
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    });
  });
  // Forms asking for a confirmation first (no inline handlers: a strict CSP holds).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); event.stopImmediatePropagation(); }
    });
  });
  // Every submitted form shows that it is working until the next page arrives.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.getAttribute("aria-busy") === "true") { return; }
    form.setAttribute("aria-busy", "true");
    form.classList.add("busy");
    var button = event.submitter || form.querySelector("button[type=submit], button:not([type])");
    if (button) {
      button.dataset.label = button.textContent;
      setTimeout(function () {  // after the browser has read the button's name and value
        button.disabled = true;
        button.classList.add("working");
        if (form.method.toLowerCase() === "post") { button.textContent = "Working…"; }
      }, 0);
    }
  });
  // Parts of a form that only apply to one choice (the Deploy wizard's schedule for the
  // periodic rule, parallelism for low latency): hidden and left out otherwise.
  function setActive(el, active) {
    el.hidden = !active;
    el.querySelectorAll("input, select, textarea").forEach(function (f) { f.disabled = !active; });
  }
  document.querySelectorAll("[data-show-when]").forEach(function (el) {
    var rule = el.dataset.showWhen.split("="), form = el.closest("form");
    var update = function () {
      var field = form.elements[rule[0]];
      setActive(el, !!field && field.value === rule[1]);
    };
    form.addEventListener("change", update);
    update();
  });
  // Each mapping row shows the control of its chosen source only.
  document.querySelectorAll("select[data-source-select]").forEach(function (select) {
    var row = select.closest("tr");
    var update = function () {
      row.querySelectorAll(".source-field").forEach(function (f) {
        setActive(f, f.dataset.for === select.value);
      });
    };
    select.addEventListener("change", update);
    update();
  });
  // The schedule's plain-language reading and next runs, as it is typed.
  var schedule = document.querySelector("input[data-preview-url]");
  if (schedule) {
    var reading = document.getElementById("schedule-reading");
    var next = document.getElementById("schedule-next");
    var timer = null, asked = 0;
    var show = function (answer) {
      reading.textContent = answer.valid ? answer.description : answer.message;
      reading.classList.toggle("error-inline", !answer.valid);
      next.replaceChildren.apply(next, (answer.next_runs || []).map(function (run) {
        var li = document.createElement("li"); li.textContent = run; return li;
      }));
    };
    schedule.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++asked;
        if (!schedule.value.trim()) { show({valid: false, message: "Type a schedule: its meaning and next runs show here."}); return; }
        fetch(schedule.dataset.previewUrl + "?schedule=" + encodeURIComponent(schedule.value),
              {credentials: "same-origin"})
          .then(function (r) { return r.json(); })
          .then(function (answer) { if (mine === asked) { show(answer); } });
      }, 200);
    });
  }
  // Coming back with the browser's Back button shows the page as it was, not busy.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    document.querySelectorAll("form.busy").forEach(function (form) {
      form.removeAttribute("aria-busy"); form.classList.remove("busy");
      form.querySelectorAll("button.working").forEach(function (b) {
        b.disabled = false; b.classList.remove("working");
        if (b.dataset.label) { b.textContent = b.dataset.label; }
      });
    });
  });
})();
