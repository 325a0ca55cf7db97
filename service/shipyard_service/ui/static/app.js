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
  // Live pages: a running execution (status, log tail, metrics) and a deployment (status,
  // health, pods, logs) poll their JSON; bounded in count, stopped when the execution ends.
  var live = document.querySelector("[data-live-url]");
  if (live) {
    var every = +(live.dataset.liveEvery || 3000), polls = 0, MAX_POLLS = 600;
    var logs = document.querySelector("#deployment-logs, #logs[data-last-id]");
    var setStatus = function (el, value) {
      var badge = el.classList.contains("status") ? el : el.querySelector(".status");
      if (!badge || !value) { return; }
      badge.textContent = value;
      badge.className = "status status-" + String(value).toLowerCase();
    };
    var appendLogs = function (lines) {
      if (!logs || !lines || !lines.length) { return; }
      var following = logs.scrollHeight - logs.scrollTop - logs.clientHeight < 40;
      var empty = logs.querySelector(".log-empty");
      if (empty) { empty.remove(); }
      lines.forEach(function (line) {
        var span = document.createElement("span");
        span.className = "log-" + line.stream;
        span.textContent = line.timestamp.replace("T", " ").slice(0, 19) + "  " +
          (line.source && logs.id === "deployment-logs" ? "[" + line.source + "] " : "") + line.message;
        logs.appendChild(span);
        logs.appendChild(document.createTextNode("\n"));
        logs.dataset.lastId = String(line.id);
      });
      if (following) { logs.scrollTop = logs.scrollHeight; }  // following the tail
    };
    var setMetrics = function (values) {
      var table = document.querySelector("#single-metrics tbody");
      if (!table || !values) { return; }
      Object.keys(values).sort().forEach(function (name) {
        var row = table.querySelector("tr[data-metric='" + CSS.escape(name) + "']");
        if (!row) {
          var empty = table.querySelector("td.empty");
          if (empty) { empty.parentElement.remove(); }
          row = document.createElement("tr");
          row.dataset.metric = name;
          row.appendChild(document.createElement("td")).textContent = name;
          row.appendChild(document.createElement("td"));
          table.appendChild(row);
        }
        row.lastElementChild.textContent = String(+Number(values[name]).toPrecision(6));
      });
    };
    var setPods = function (pods) {
      var body = document.querySelector("#deployment-pods tbody");
      if (!body || !pods) { return; }
      if (!pods.length) {
        var none = document.createElement("tr"), cell = none.appendChild(document.createElement("td"));
        cell.colSpan = 2; cell.className = "empty"; cell.textContent = "No pod.";
        body.replaceChildren(none);
        return;
      }
      body.replaceChildren.apply(body, pods.map(function (pod) {
        var row = document.createElement("tr");
        var id = row.appendChild(document.createElement("td")).appendChild(document.createElement("code"));
        id.textContent = pod.pod_id;
        row.appendChild(document.createElement("td")).textContent = pod.status;
        return row;
      }));
    };
    var setSteps = function (steps) {  // a multi-step execution's graph (ui/graph_svg.py)
      if (!steps) { return; }
      Object.keys(steps).forEach(function (name) {
        var node = document.querySelector("#execution-graph g.step-node[data-step='" +
                                          CSS.escape(name) + "']");
        if (!node) { return; }
        node.setAttribute("data-status", steps[name]);
        var text = node.querySelector("text.step-status");
        if (text) { text.textContent = steps[name]; }
      });
    };
    var note = document.getElementById("live-note");
    var apply = function (data) {
      document.querySelectorAll("[data-live-status], #deployment-status").forEach(function (el) {
        setStatus(el, data.status);
      });
      if (live.dataset.liveExecution) {
        var item = document.querySelector("a.exec-item[data-execution='" +
                                          CSS.escape(live.dataset.liveExecution) + "']");
        if (item) { setStatus(item, data.status); }
      }
      var health = document.getElementById("deployment-health");
      if (health && data.health) { setStatus(health, data.health); }
      setPods(data.pods);
      setSteps(data.steps);
      appendLogs(data.logs);
      setMetrics(data.metrics);
      if (data.final && note) { note.textContent = "Finished (" + data.status + "): reload for its outputs and charts."; }
    };
    var next = function () {
      if (++polls > MAX_POLLS) {
        if (note) { note.textContent = "Live updates paused: reload to resume."; }
        return;
      }
      setTimeout(poll, every);
    };
    var poll = function () {
      var after = logs ? (logs.dataset.lastId || "0") : "0";
      fetch(live.dataset.liveUrl + "?after=" + encodeURIComponent(after),
            {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data) { apply(data); }
          if (!data || !data.final) { next(); }
        }, next);
    };
    next();
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
