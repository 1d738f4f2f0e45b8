/* pyrag-dsl view: builds the page from the JSON data blocks. Every value is untrusted text: it only ever
   reaches the page through createTextNode/textContent (never innerHTML), and invisible or bidi control
   characters are shown as visible "U+XXXX" marks so that no reordering can hide text. */
(function () {
  "use strict";
  var D = document;
  var CTL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\ufff9-\ufffb]/g;
  var CALL_KINDS = { call: 1, retrieve: 1, answer: 1 };

  function data(id) {
    var s = D.getElementById(id);
    return s ? JSON.parse(s.textContent) : null;
  }
  function str(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "string" ? v : (typeof v === "object" ? JSON.stringify(v) : String(v));
  }
  function txt(v) {
    var s = str(v);
    CTL.lastIndex = 0;
    if (!CTL.test(s)) return D.createTextNode(s);
    var f = D.createDocumentFragment(), last = 0, m;
    CTL.lastIndex = 0;
    while ((m = CTL.exec(s)) !== null) {
      if (m.index > last) f.appendChild(D.createTextNode(s.slice(last, m.index)));
      var code = m[0].charCodeAt(0).toString(16).toUpperCase();
      var mark = el("span", "ctl", null);
      mark.textContent = "U+" + ("0000" + code).slice(-4);
      mark.title = "invisible or bidi control character";
      f.appendChild(mark);
      last = m.index + m[0].length;
    }
    if (last < s.length) f.appendChild(D.createTextNode(s.slice(last)));
    return f;
  }
  function el(tag, cls) {
    var e = D.createElement(tag);
    if (cls) e.className = cls;
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function add(e, c) {
    if (c === null || c === undefined) return e;
    if (Array.isArray(c)) { for (var i = 0; i < c.length; i++) add(e, c[i]); return e; }
    e.appendChild(c instanceof Node ? c : txt(c));
    return e;
  }
  function t(v, cls) { return el("span", "t" + (cls ? " " + cls : ""), v); }
  function on(e, type, fn) { e.addEventListener(type, fn); return e; }
  function num(v, digits) {
    if (typeof v !== "number" || !isFinite(v)) return "";
    return digits === undefined ? String(v) : v.toFixed(digits);
  }
  function pct(v) { return typeof v === "number" && isFinite(v) ? (100 * v).toFixed(1) : "\u2013"; }
  function secs(e) {
    return typeof e.start === "number" && typeof e.end === "number" ? e.end - e.start : null;
  }
  function ms(v) { return v === null || v === undefined ? "" : (1000 * v).toFixed(v < 0.01 ? 1 : 0) + " ms"; }

  /* text longer than n characters is folded: its head, and a button that shows the whole */
  function fold(v, n, tag) {
    var s = str(v), box = el(tag || "span", tag === "pre" ? "" : "t");
    n = n || 300;
    if (s.length <= n) return add(box, s);
    var open = false, btn = el("button", "fold");
    btn.type = "button";
    function draw() {
      while (box.firstChild) box.removeChild(box.firstChild);
      add(box, open ? s : s.slice(0, n) + "\u2026");
      btn.textContent = open ? "fold" : "show all " + s.length + " characters";
      box.appendChild(btn);
    }
    on(btn, "click", function (ev) { ev.stopPropagation(); open = !open; draw(); });
    draw();
    return box;
  }
  /* a collapsible section whose body is built on first opening (or now, when open) */
  function section(title, open, build, extra) {
    var d = el("details", "sec"), s = el("summary", null, el("h2", null, title)), body = el("div", "body");
    if (extra) add(s, [" ", extra]);
    d.appendChild(s); d.appendChild(body);
    var built = false;
    function make() { if (!built) { built = true; build(body); } }
    if (open) { d.open = true; make(); }
    on(d, "toggle", function () { if (d.open) make(); });
    return d;
  }
  function kv(pairs) {
    var g = el("div", "kv");
    pairs.forEach(function (p) {
      if (p[1] === null || p[1] === undefined || p[1] === "") return;
      g.appendChild(el("div", "k", p[0]));
      g.appendChild(p[1] instanceof Node ? el("div", null, p[1]) : el("div", "t", p[1]));
    });
    return g;
  }
  function badge(text, cls) { return el("span", "badge" + (cls ? " " + cls : ""), text); }
  function table(head) {
    var tb = el("table"), tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th", null, h)); });
    tb.appendChild(el("thead", null, tr));
    var body = el("tbody");
    tb.appendChild(body);
    return { table: tb, body: body };
  }
  function td(v, cls) { return el("td", cls, v); }
  function jsonPre(v) { return fold(JSON.stringify(v, null, 2), 4000, "pre"); }

  /* ---- values ---------------------------------------------------------------------------------- */
  function isDocs(v) { return Array.isArray(v); }
  function summary(v) {
    if (isDocs(v)) {
      var titles = v.slice(0, 3).map(function (d) { return d && typeof d === "object" ? str(d.title) : str(d); });
      return v.length + " doc" + (v.length === 1 ? "" : "s") + (titles.length ? ": " + titles.join(" | ") : "") +
        (v.length > 3 ? " | \u2026" : "");
    }
    return str(v);
  }
  function docsList(v) {
    var ol = el("ol", "docs");
    v.forEach(function (d) {
      d = d && typeof d === "object" ? d : { text: d };
      var li = el("li", null, el("b", "t", d.title), " ",
        el("span", "muted", typeof d.score === "number" ? "score " + d.score.toFixed(3) : ""), " ",
        el("span", "muted mono", d.id ? "id " + str(d.id) : ""), el("br"), fold(d.text, 240));
      ol.appendChild(li);
    });
    return ol;
  }
  function valueBox(v) {
    if (isDocs(v)) return docsList(v);
    if (v !== null && typeof v === "object") return jsonPre(v);
    return fold(v, 2000);
  }

  /* ---- errors with a caret --------------------------------------------------------------------- */
  function errorBox(err, program) {
    var box = el("div", "errbox");
    if (!err || typeof err !== "object") return add(box, el("div", "err t", str(err)));
    var where = typeof err.line === "number" ? "line " + err.line + ", col " + err.col + ": " : "";
    box.appendChild(el("div", "err", el("b", null, str(err.type || "Error")), " ", t(where + str(err.message))));
    if (err.hint) box.appendChild(el("div", "muted t", str(err.hint)));
    var lines = typeof program === "string" ? program.split("\n") : [];
    var src = typeof err.line === "number" && lines[err.line - 1] !== undefined ? lines[err.line - 1]
      : (typeof err.source_line === "string" ? err.source_line : null);
    if (src !== null && typeof err.col === "number") {
      var shift = lines[err.line - 1] !== undefined ? 0 : (err.source_shift || 0);
      var col = Math.max(0, err.col - 1 - shift);
      var width = err.end_line === err.line && typeof err.end_col === "number" ? Math.max(1, err.end_col - err.col) :
        Math.max(1, src.length - col);
      var pre = el("pre", null, typeof err.line === "number" ? String(err.line).padStart(4) + " | " : "", src, "\n",
        el("span", "caret", (typeof err.line === "number" ? "       " : "") + " ".repeat(Math.min(col, 4000)) +
          "^".repeat(Math.min(width, 4000))));
      box.appendChild(pre);
    }
    var rest = {};
    Object.keys(err).forEach(function (k) {
      if (["type", "message", "hint", "line", "col", "end_line", "end_col", "source_line", "source_shift"].indexOf(k) < 0)
        rest[k] = err[k];
    });
    if (Object.keys(rest).length) box.appendChild(el("div", "muted mono t", JSON.stringify(rest)));
    return box;
  }
  /* a long program shows its first 60 lines and a button for the others */
  function numbered(program) {
    var lines = str(program).split("\n");
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    var pre = el("pre"), LIMIT = 60;
    function line(i) { return String(i + 1).padStart(4) + " | " + lines[i] + "\n"; }
    add(pre, lines.slice(0, LIMIT).map(function (l, i) { return line(i); }).join(""));
    if (lines.length > LIMIT) {
      var more = el("button", "fold", "show the other " + (lines.length - LIMIT) + " lines");
      on(more, "click", function () {
        more.remove();
        add(pre, lines.slice(LIMIT).map(function (l, i) { return line(LIMIT + i); }).join(""));
      });
      pre.appendChild(more);
    }
    return pre;
  }
  /* a line diff; runs of unchanged lines keep 3 lines of context on each side, the rest behind a button */
  function diffBox(diff) {
    var box = el("pre", "diff"), CONTEXT = 3;
    function row(d) {
      return el("div", d[0] === "-" ? "del" : d[0] === "+" ? "add" : null, (d[0] === "=" ? "  " : d[0] + " ") + d[1]);
    }
    var i = 0;
    while (i < diff.length) {
      var j = i;
      while (j < diff.length && diff[j][0] === "=") j++;
      var run = diff.slice(i, j), keepHead = i === 0 ? 0 : CONTEXT, keepTail = j === diff.length ? 0 : CONTEXT;
      if (run.length > keepHead + keepTail + 2) {
        run.slice(0, keepHead).forEach(function (d) { box.appendChild(row(d)); });
        var hidden = run.slice(keepHead, run.length - keepTail);
        var more = el("button", "fold", "\u2026 " + hidden.length + " unchanged lines");
        (function (hidden, more) {
          on(more, "click", function () {
            var f = D.createDocumentFragment();
            hidden.forEach(function (d) { f.appendChild(row(d)); });
            more.replaceWith(f);
          });
        })(hidden, more);
        box.appendChild(el("div", null, more));
        run.slice(run.length - keepTail).forEach(function (d) { box.appendChild(row(d)); });
      } else run.forEach(function (d) { box.appendChild(row(d)); });
      while (j < diff.length && diff[j][0] !== "=") box.appendChild(row(diff[j++]));
      i = j;
    }
    return box;
  }

  /* ---- question view --------------------------------------------------------------------------- */
  function renderQuestion(q, root) {
    var ev = (q.events || []).filter(function (e) { return e && typeof e === "object"; });
    var header = q.header || {}, result = q.result || {}, rec = q.record || null;
    function kind(k) { return ev.filter(function (e) { return e.kind === k; }); }
    var decompose = kind("decompose")[0], finals = kind("final"), fin = finals[finals.length - 1];
    var question = header.question || (decompose && decompose.question) || result.original_query ||
      (rec && rec.question) || "";
    D.title = "pyrag-dsl: " + str(question).slice(0, 80);

    var settings = header.settings || {};
    var t0 = Infinity, t1 = -Infinity;
    ev.forEach(function (e) {
      if (typeof e.start === "number" && e.start < t0) t0 = e.start;
      if (typeof e.end === "number" && e.end > t1) t1 = e.end;
    });
    var answer = fin ? fin.final_answer : (result.final_answer !== undefined ? result.final_answer :
      (rec ? rec.prediction : null));
    var error = fin && fin.error ? fin.error : (result.error || (rec ? rec.error : null));
    root.appendChild(el("h1", "t", question));
    var top = kv([
      ["final answer", el("span", "big t", answer === null || answer === undefined ? "(none)" : str(answer))],
      ["gold", rec && rec.gold ? str((rec.gold || []).join(" | ")) : null],
      ["scores", rec && rec.metrics ? "EM " + num(rec.metrics.em) + "  F1 " + num(rec.metrics.f1, 2) + "  Acc " +
        num(rec.metrics.acc) + "  recall " + (rec.metrics.recall === null ? "\u2013" : num(rec.metrics.recall)) : null],
      ["error", error ? errorBox(error, fin ? fin.program : null) : null],
      ["settings", Object.keys(settings).length ? ["topk", "boosted_topk", "policy", "parallel", "mode", "stream_plan",
        "max_repairs"].filter(function (k) { return settings[k] !== undefined && settings[k] !== null; })
        .map(function (k) { return k + "=" + str(settings[k]); }).join("  ") : null],
      ["time", isFinite(t0) ? (t1 - t0).toFixed(3) + " s from the first event to the last, " + ev.length + " events" : null],
      ["source", q.source ? str(q.source) : null]
    ]);
    root.appendChild(top);
    if (q.notes && q.notes.length) root.appendChild(el("ul", "notes", q.notes.map(function (n) { return el("li", "t", n); })));

    var subs = decompose ? decompose.sub_queries : (result.sub_queries || (rec && rec.sub_queries));
    if (Array.isArray(subs)) {
      root.appendChild(section("Sub-queries", true, function (b) {
        b.appendChild(el("ol", null, subs.map(function (s) { return el("li", "t", s); })));
        if (decompose) {
          b.appendChild(kv([["attempts", str(decompose.attempts)], ["fallback", decompose.fallback ? "yes: [question]" : "no"],
            ["seconds", secs(decompose) === null ? null : secs(decompose).toFixed(3)]]));
          (decompose.raw || []).forEach(function (r, i) {
            b.appendChild(el("div", "muted", "raw reply " + (i + 1) + ":"));
            b.appendChild(fold(r, 400, "pre"));
          });
        }
      }, badge(subs.length + "")));
    }

    var plans = kind("plan"), repairs = kind("repair");
    if (plans.length || q.code || (rec && rec.program)) {
      root.appendChild(section("Programs", true, function (b) { programs(b, plans, repairs, q); },
        badge(plans.length ? plans.length + " version" + (plans.length > 1 ? "s" : "") : "1")));
    }
    var steps = ev.filter(function (e) { return CALL_KINDS[e.kind] || e.kind === "assign" || e.kind === "error" ||
      e.kind === "execute" || e.kind === "adaptive_retry"; });
    if (steps.length) root.appendChild(section("Steps", true, function (b) { stepTable(b, ev); }, badge(steps.length + "")));
    var retries = kind("adaptive_retry");
    if (retries.length) root.appendChild(section("Adaptive retrieval", true, function (b) { adaptive(b, retries, ev); },
      badge(retries.length + "")));
    var llm = kind("llm");
    root.appendChild(section("LLM calls", llm.length > 0 && llm.length <= 20, function (b) { llmCalls(b, llm, ev); },
      badge(llm.length ? llm.length + "" : "no llm events")));
    if (isFinite(t0)) root.appendChild(section("Timeline", ev.length <= 400, function (b) { waterfall(b, ev, t0, t1); }));
    if (q.result || rec) root.appendChild(section("Files", false, function (b) {
      if (rec) { b.appendChild(el("h3", null, "eval record")); b.appendChild(jsonPre(rec)); }
      if (q.result) { b.appendChild(el("h3", null, "result.json")); b.appendChild(jsonPre(q.result)); }
    }));
  }

  function programs(b, plans, repairs, q) {
    if (!plans.length) {
      var code = q.code || (q.record && q.record.program);
      if (code) b.appendChild(numbered(code));
      return;
    }
    plans.forEach(function (p, i) {
      var errs = Array.isArray(p.errors) ? p.errors : [];
      var h = el("h3", null, p.round ? "Repair round " + p.round : "First program",
        errs.length ? badge(errs.length + " error" + (errs.length > 1 ? "s" : ""), "err") : badge("valid", "ok"));
      b.appendChild(h);
      var rep = repairs.filter(function (r) { return r.round === p.round; })[0];
      if (rep) {
        b.appendChild(el("div", "muted", "the errors above, as sent back to the Plan LLM (" + (secs(rep) || 0).toFixed(3) +
          " s):"));
        b.appendChild(fold(rep.feedback, 300, "pre"));
        b.appendChild(el("div", "muted", "the program that came back, as a diff:"));
      }
      var diff = q.diffs && q.diffs[i];
      b.appendChild(diff ? diffBox(diff) : numbered(p.program));
      errs.forEach(function (e) { b.appendChild(errorBox(e, p.program)); });
    });
  }

  function stepTable(b, ev) {
    var tb = table(["step", "try", "stmt", "target", "call", "source", "value", "cached", "time"]);
    tb.table.className = "steps";
    var attempt = 0, shown = 0, FIRST = 100, rows = [];
    ev.forEach(function (e) {
      if (e.kind === "execute") { attempt = e.attempt || attempt + 1; }
      if (!(CALL_KINDS[e.kind] || e.kind === "assign" || e.kind === "error" || e.kind === "execute" ||
        e.kind === "adaptive_retry")) return;
      rows.push([e, attempt]);
    });
    function draw(n) {
      var f = D.createDocumentFragment(), to = Math.min(rows.length, shown + n);
      for (var i = shown; i < to; i++) f.appendChild(stepRow(rows[i][0], rows[i][1]));
      tb.body.appendChild(f);
      shown = to;
    }
    /* the first rows now, the others in slices after the first paint: a long trace opens at once */
    function rest() { draw(400); if (shown < rows.length) setTimeout(rest, 0); }
    draw(FIRST);
    b.appendChild(tb.table);
    if (shown < rows.length) requestAnimationFrame(function () { setTimeout(rest, 0); });
  }
  function stepRow(e, attempt) {
    var tr = el("tr", "row");
    var k = e.kind, what = CALL_KINDS[k] ? str(e.tool || k) : k;
    var value;
    if (k === "execute") value = "execution " + str(e.attempt) + " starts" + (e.settings ? " " + JSON.stringify(e.settings) : "");
    else if (k === "adaptive_retry") value = str(e.target) + " = " + JSON.stringify(str(e.answer)) + ": retrieve statements " +
      str(e.retrieve_statements) + " re-run with top-k " + str(e.topk);
    else if (k === "error") value = e.error && typeof e.error === "object" ? str(e.error.type) + ": " + str(e.error.message) : str(e.error);
    else value = summary(e.output);
    var s = secs(e);
    add(tr, [td(str(e.step), "num"), td(str(attempt || ""), "num"),
      td(e.statement === undefined || e.statement === null ? "" : str(e.statement) + (e.line ? " (L" + e.line + ")" : ""), "num"),
      td(e.target === undefined ? "" : t(e.target), "mono"), td(el("span", "k-" + k, what)),
      td(fold(e.source, 90), "mono"), td(fold(value, 140)), td(e.cached ? "cached" : ""), td(CALL_KINDS[k] ? ms(s) : "", "num")]);
    var detail = null;
    on(tr, "click", function () {
      if (detail) { detail.remove(); detail = null; return; }
      var cell = el("td");
      cell.colSpan = 9;
      if (e.inputs) { cell.appendChild(el("h3", null, "inputs")); cell.appendChild(jsonPre(e.inputs)); }
      if (e.output !== undefined) { cell.appendChild(el("h3", null, "output")); cell.appendChild(valueBox(e.output)); }
      if (k === "error") cell.appendChild(errorBox(e.error, null));
      if (k === "execute") cell.appendChild(numbered(e.program));
      if (k === "adaptive_retry") cell.appendChild(jsonPre(e));
      detail = el("tr", "detail", cell);
      tr.after(detail);
    });
    return tr;
  }

  function adaptive(b, retries, ev) {
    var sources = {};
    ev.forEach(function (e) { if (typeof e.statement === "number" && e.source) sources[e.statement] = e.source; });
    retries.forEach(function (r) {
      b.appendChild(el("p", null, el("code", "t", str(r.target)), " (statement " + str(r.statement) + ") answered ",
        el("b", "t", JSON.stringify(str(r.answer))), ", a sentinel: the retrieval" +
        ((r.retrieve_statements || []).length > 1 ? "s" : "") + " feeding it re-ran with top-k ", el("b", null, str(r.topk)),
        " (policy " + str(r.policy || "incremental") + "). Statements that re-ran:"));
      var tb = table(["stmt", "source", "retrieval boosted"]);
      (r.rerun || []).forEach(function (st) {
        tb.body.appendChild(el("tr", null, td(str(st), "num"), td(fold(sources[st] || "", 200), "mono"),
          td((r.retrieve_statements || []).indexOf(st) >= 0 ? "top-k " + str(r.topk) : "")));
      });
      b.appendChild(tb.table);
    });
  }

  function llmCalls(b, llm, ev) {
    if (!llm.length) {
      b.appendChild(el("p", "muted", "This trace has no \"llm\" events (traces written before LLM calls were " +
        "recorded). The answer() calls are in the step table; decompose and plan replies are above."));
      return;
    }
    var tb = table(["step", "agent", "model", "prompt tok", "completion tok", "seconds", "reply"]);
    llm.forEach(function (e) {
      var tr = el("tr", "row");
      var s = secs(e);
      add(tr, [td(str(e.step), "num"), td(el("span", "k-llm", str(e.agent))), td(t(e.model), "mono"),
        td(num(e.prompt_tokens), "num"), td(num(e.completion_tokens), "num"), td(s === null ? "" : s.toFixed(3), "num"),
        td(e.error ? el("span", "err t", "failed: " + str(e.error)) : e.content_dropped ?
          el("span", "muted", "(texts left out: the trace's byte budget was spent)") : fold(e.reply, 160))]);
      var detail = null;
      on(tr, "click", function () {
        if (detail) { detail.remove(); detail = null; return; }
        var cell = el("td");
        cell.colSpan = 7;
        (Array.isArray(e.messages) ? e.messages : []).forEach(function (m) {
          m = m && typeof m === "object" ? m : { content: m };
          cell.appendChild(el("h3", null, str(m.role || "message")));
          cell.appendChild(fold(m.content, 3000, "pre"));
        });
        cell.appendChild(el("h3", null, "reply"));
        cell.appendChild(fold(e.reply, 3000, "pre"));
        detail = el("tr", "detail", cell);
        tr.after(detail);
      });
      tb.body.appendChild(tr);
    });
    b.appendChild(tb.table);
  }

  /* the waterfall: one row per timed event, bars from start to end; calls that share a start and an end are
     one batch; statements dispatched while the plan streamed are "prefetch" bars */
  function waterfall(b, ev, t0, t1) {
    var items = [];
    ev.forEach(function (e) {
      if (typeof e.start !== "number" || typeof e.end !== "number" || e.kind === "final") return;
      items.push(e);
      if (e.kind === "plan_stream" && Array.isArray(e.dispatched)) {
        e.dispatched.forEach(function (d) {
          if (!d || typeof d.at_s !== "number") return;
          var end = e.start + (typeof d.done_s === "number" ? d.done_s : (e.end - e.start));
          items.push({ kind: "prefetch", step: e.step, statement: d.statement, source: d.source, start: e.start + d.at_s,
            end: end, ok: d.ok });
          if (end > t1) t1 = end;
        });
      }
    });
    items.sort(function (a, c) { return a.start - c.start || (a.step || 0) - (c.step || 0); });
    /* retrievals that started and ended together (within 2 ms) went out as one batched request */
    var batch = new Map(), group = [];
    function close() { group.forEach(function (g) { batch.set(g, group.length); }); group = []; }
    items.forEach(function (e) {
      if (e.kind !== "retrieve" || e.cached) return;
      var last = group[group.length - 1];
      if (last && (Math.abs(e.start - last.start) > 0.002 || Math.abs(e.end - last.end) > 0.002)) close();
      group.push(e);
    });
    close();
    var span = Math.max(t1 - t0, 1e-6);
    var legend = el("div", "legend muted", el("span", "k-retrieve", "\u25A0 retrieve"), el("span", "k-answer", "\u25A0 answer"),
      el("span", "k-llm", "\u25A0 llm"), el("span", "k-prefetch", "\u25A0 prefetched while the plan streamed"),
      el("span", null, "\u25A0 pipeline"), el("span", null, "faint: from the call cache; \u00D7N: one batched request"));
    b.appendChild(legend);
    var wf = el("div", "wf");
    var axis = el("div", "axis");
    for (var i = 0; i <= 4; i++) axis.appendChild(el("span", null, (span * i / 4).toFixed(span < 1 ? 3 : 2) + " s"));
    wf.appendChild(axis);
    items.forEach(function (e) {
      var k = e.kind === "call" ? "answer" : e.kind;
      var label = "#" + str(e.step) + " " + (e.kind === "llm" ? "llm " + str(e.agent) :
        e.kind === "prefetch" ? "prefetch stmt " + str(e.statement) : str(e.kind)) +
        (e.target ? " " + str(e.target) : "");
      var n = batch.get(e) || 0;
      if (n > 1) label += " \u00D7" + n;
      var bar = el("div", "bar " + (e.error && e.kind !== "final" ? "error" : k) + (e.cached ? " cached" : ""));
      bar.style.left = (100 * (e.start - t0) / span) + "%";
      bar.style.width = (100 * Math.max(0, e.end - e.start) / span) + "%";
      bar.title = label + ": " + ((e.start - t0) * 1000).toFixed(1) + " ms + " + ((e.end - e.start) * 1000).toFixed(1) + " ms" +
        (e.source ? "\n" + str(e.source).slice(0, 300) : "");
      var lbl = el("div", "lbl t", label);
      lbl.title = bar.title;
      wf.appendChild(el("div", "r", lbl, el("div", "lane", bar)));
    });
    b.appendChild(wf);
  }

  /* ---- eval / run view ------------------------------------------------------------------------- */
  function svgEl(tag, attrs) {
    var e = D.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }
  function metricChart(rows, summaryObj) {
    /* bars of EM, F1, Acc, recall overall and per question type, drawn from the records */
    var groups = {}, order = ["all"];
    rows.forEach(function (r) {
      [["all"], [r.type]].forEach(function (g) {
        var name = g[0];
        if (name === null || name === undefined || name === "") return;
        name = str(name);
        if (!groups[name]) { groups[name] = { n: 0, em: [], f1: [], acc: [], recall: [] }; if (name !== "all") order.push(name); }
        var G = groups[name];
        G.n++;
        ["em", "f1", "acc", "recall"].forEach(function (m) { if (typeof r[m] === "number") G[m].push(r[m]); });
      });
    });
    if (!groups.all) return null;
    var metrics = ["em", "f1", "acc", "recall"], colors = ["#2457c5", "#5b8def", "#2f7d4f", "#b25d00"];
    var W = 140 * order.length + 60, H = 190, svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H,
      role: "img" });
    svg.appendChild(svgEl("line", { x1: 40, y1: 160, x2: W - 10, y2: 160, stroke: "#999" }));
    [0, 0.5, 1].forEach(function (v) {
      var y = 160 - 140 * v;
      svg.appendChild(svgEl("line", { x1: 40, y1: y, x2: W - 10, y2: y, stroke: "#e3e6ec" }));
      var l = svgEl("text", { x: 34, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#667085" });
      l.textContent = v.toFixed(1);
      svg.appendChild(l);
    });
    order.forEach(function (name, gi) {
      var G = groups[name], x0 = 50 + gi * 140;
      metrics.forEach(function (m, mi) {
        if (!G[m].length) return;
        var v = G[m].reduce(function (a, c) { return a + c; }, 0) / G[m].length;
        var h = 140 * v, x = x0 + mi * 30;
        var rect = svgEl("rect", { x: x, y: 160 - h, width: 24, height: Math.max(h, 0.5), fill: colors[mi] });
        var tip = svgEl("title");
        tip.textContent = name + " " + m + " = " + v.toFixed(3) + " (n=" + G[m].length + ")";
        rect.appendChild(tip);
        svg.appendChild(rect);
        var lab = svgEl("text", { x: x + 12, y: 155 - h, "text-anchor": "middle", "font-size": 10, fill: "#1d2330" });
        lab.textContent = (100 * v).toFixed(0);
        svg.appendChild(lab);
        var ml = svgEl("text", { x: x + 12, y: 173, "text-anchor": "middle", "font-size": 10, fill: "#667085" });
        ml.textContent = m;
        svg.appendChild(ml);
      });
      var gl = svgEl("text", { x: x0 + 57, y: 188, "text-anchor": "middle", "font-size": 12, fill: "#1d2330" });
      gl.textContent = name.slice(0, 20) + " (n=" + G.n + ")";
      svg.appendChild(gl);
    });
    svg.groups = order.length;
    return svg;
  }

  function renderTable(P, root) {
    var rows = P.rows || [], isEval = P.kind === "eval", S = P.summary || {}, cfg = S.config || {};
    var overall = S.overall || {};
    D.title = "pyrag-dsl: " + (isEval ? "eval " : "run ") + str(P.source).split("/").slice(-2).join("/");
    root.appendChild(el("h1", "t", (isEval ? "Eval" : "Run") + (cfg.method ? ": " + str(cfg.method) : "") +
      (cfg.data && cfg.data.source ? " on " + str(cfg.data.source) : "") + " \u2014 " + rows.length + " questions"));
    root.appendChild(el("div", "muted t", str(P.source)));
    if (P.notes && P.notes.length) root.appendChild(el("ul", "notes", P.notes.map(function (n) { return el("li", "t", n); })));
    if (isEval) {
      var cards = el("div", "cards");
      [["EM", pct(overall.em)], ["F1", pct(overall.f1)], ["Acc", pct(overall.acc)], ["recall", pct(overall.recall)],
        ["errors", pct(overall.error_rate)], ["LLM calls", num(overall.llm_calls, 2)],
        ["prompt tok", num(overall.prompt_tokens, 0)], ["retrievals", num(overall.retrievals, 2)],
        ["repairs", pct(overall.repair_rate)], ["adaptive", pct(overall.adaptive_retry_rate)],
        ["s p50", num(overall.seconds_p50, 1)], ["s p95", num(overall.seconds_p95, 1)]].forEach(function (c) {
        if (c[1] === "" || c[1] === "\u2013") return;
        cards.appendChild(el("div", "card", el("div", "v", c[1]), el("div", "k", c[0])));
      });
      root.appendChild(cards);
      var chart = el("div", "chart");
      var svg = metricChart(rows, S);
      if (svg && (!P.chart_png || svg.groups > 1)) chart.appendChild(svg);  /* per question type, or no PNG */
      if (P.chart_png) {
        var img = el("img");
        img.alt = "eval report chart";
        img.src = P.chart_png;
        chart.appendChild(el("div", null, img));
      }
      root.appendChild(chart);
      if (S.config) root.appendChild(section("Summary and configuration", false, function (b) {
        var llm = cfg.llm || {};
        b.appendChild(kv([["model", str(llm.model || llm.gguf || "")], ["retriever", str(cfg.retriever && (cfg.retriever.index ||
          cfg.retriever.url || cfg.retriever.kind) || "")], ["error types", S.error_types ? JSON.stringify(S.error_types) : null],
          ["complete", str(S.complete)]]));
        b.appendChild(jsonPre(S));
      }));
    }
    /* filters */
    var types = {}, etypes = {};
    rows.forEach(function (r) { if (r.type) types[str(r.type)] = 1; if (r.error_type) etypes[str(r.error_type)] = 1; });
    var search = el("input"); search.type = "search"; search.placeholder = "filter: question, prediction, gold, id";
    function select(opts) {
      var s = el("select");
      opts.forEach(function (o) { var op = el("option", null, o[1]); op.value = o[0]; s.appendChild(op); });
      return s;
    }
    var show = select(isEval ? [["all", "all questions"], ["wrong", "wrong only (EM 0)"], ["right", "right only"],
      ["errors", "errors only"]] : [["all", "all questions"], ["errors", "errors only"]]);
    var etSel = select([["", "any error type"]].concat(Object.keys(etypes).sort().map(function (k) { return [k, k]; })));
    var tySel = select([["", "any question type"]].concat(Object.keys(types).sort().map(function (k) { return [k, k]; })));
    var count = el("span", "muted");
    var filters = el("div", "filters", search, show, etSel);
    if (Object.keys(types).length) filters.appendChild(tySel);
    filters.appendChild(count);
    root.appendChild(filters);

    var cols = [["i", "#", "num"], ["id", "id", "mono"], ["question", "question"], ["prediction", "prediction", "pred"]];
    if (isEval) cols = cols.concat([["gold", "gold"], ["em", "EM", "num"], ["f1", "F1", "num"], ["recall", "recall", "num"]]);
    cols = cols.concat([["seconds", "s", "num"], ["repairs", "repairs", "num"], ["error_type", "error"]]);
    var tb = el("table"), hr = el("tr"), body = el("tbody");
    var sortKey = "i", sortDir = 1;
    cols.forEach(function (c) {
      var th = el("th", "sort", c[1]);
      on(th, "click", function () {
        sortDir = sortKey === c[0] ? -sortDir : 1; sortKey = c[0];
        Array.prototype.forEach.call(hr.children, function (h) { h.classList.remove("asc", "desc"); });
        th.classList.add(sortDir > 0 ? "asc" : "desc");
        draw();
      });
      hr.appendChild(th);
    });
    tb.appendChild(el("thead", null, hr)); tb.appendChild(body);
    root.appendChild(tb);
    var trs = rows.map(function (r) {
      var tr = el("tr", "row " + (r.error_type ? "bad" : (isEval ? (r.em === 1 ? "good" : "bad") : "")));
      cols.forEach(function (c) {
        var v = r[c[0]], cell;
        if (c[0] === "i") v = r.i + 1;
        if (c[0] === "gold" && Array.isArray(v)) v = v.join(" | ");
        if (c[0] === "f1" || c[0] === "em" || c[0] === "recall") v = typeof v === "number" ? num(v, c[0] === "f1" ? 2 : 0) : "\u2013";
        if (c[0] === "seconds") v = typeof v === "number" ? v.toFixed(1) : "";
        if (c[0] === "error_type" && v) { cell = td(el("span", "err", v)); cell.title = str(r.error).slice(0, 500); }
        else cell = td(c[0] === "question" || c[0] === "prediction" || c[0] === "gold" ? fold(v, 160) : str(v), c[2]);
        tr.appendChild(cell);
      });
      on(tr, "click", function (ev) { if (ev.target.tagName !== "BUTTON") location.hash = "q" + r.i; });
      return tr;
    });
    function keep(r) {
      var f = show.value;
      if (f === "wrong" && r.em === 1) return false;
      if (f === "right" && r.em !== 1) return false;
      if (f === "errors" && !r.error_type) return false;
      if (etSel.value && r.error_type !== etSel.value) return false;
      if (tySel.value && str(r.type) !== tySel.value) return false;
      var s = search.value.trim().toLowerCase();
      if (s) {
        var hay = (str(r.question) + "\n" + str(r.prediction) + "\n" + str(r.gold) + "\n" + str(r.id) + "\n" + str(r.error)).toLowerCase();
        if (hay.indexOf(s) < 0) return false;
      }
      return true;
    }
    function cmp(a, c) {
      var x = a[sortKey], y = c[sortKey];
      if (x === y) return a.i - c.i;
      if (x === null || x === undefined || x === "") return 1;
      if (y === null || y === undefined || y === "") return -1;
      if (typeof x === "number" && typeof y === "number") return (x - y) * sortDir;
      return str(x).localeCompare(str(y)) * sortDir;
    }
    function draw() {
      var order = rows.slice().sort(cmp), n = 0;
      while (body.firstChild) body.removeChild(body.firstChild);
      order.forEach(function (r) { if (keep(r)) { body.appendChild(trs[r.i]); n++; } });
      count.textContent = "showing " + n + " of " + rows.length;
    }
    [show, etSel, tySel].forEach(function (s) { on(s, "change", draw); });
    on(search, "input", draw);
    draw();
  }

  /* ---- routing: the table, or one question (#q<N>), rendered on demand -------------------------- */
  var P = data("pyrag-data") || { kind: "question", events: [] };
  var app = D.getElementById("app");
  var listView = null, cache = {};
  function route() {
    if (P.kind === "question") return;
    var m = /^#q(\d+)$/.exec(location.hash);
    if (m && !D.getElementById("pyrag-q-" + m[1]) && D.readyState === "loading") {
      D.addEventListener("DOMContentLoaded", route);  /* the question blocks follow the script: not parsed yet */
      return;
    }
    var qv = D.getElementById("qview");
    if (qv) qv.remove();
    if (!m || !D.getElementById("pyrag-q-" + m[1])) {
      listView.hidden = false;
      D.title = "pyrag-dsl: " + (P.kind === "eval" ? "eval" : "run");
      return;
    }
    var i = +m[1];
    listView.hidden = true;
    var view = el("div");
    view.id = "qview";
    var nav = el("div", "nav");
    var back = el("a", null, "\u2190 all questions"); back.href = "#";
    nav.appendChild(back);
    if (i > 0) { var prev = el("a", null, "\u2190 previous"); prev.href = "#q" + (i - 1); nav.appendChild(prev); }
    if (i + 1 < (P.rows || []).length) { var next = el("a", null, "next \u2192"); next.href = "#q" + (i + 1); nav.appendChild(next); }
    nav.appendChild(el("span", "muted", "question " + (i + 1) + " of " + (P.rows || []).length));
    view.appendChild(nav);
    if (!cache[i]) cache[i] = data("pyrag-q-" + i);
    renderQuestion(cache[i], view);
    app.appendChild(view);
    window.scrollTo(0, 0);
  }
  function renderIndex(P, root) {
    /* serve-ui's first page: the runs, evals and questions under the served directory */
    D.title = "pyrag-dsl: " + str(P.source);
    root.appendChild(el("h1", null, "Runs under ", t(P.source)));
    var tb = table(["kind", "path"]);
    (P.rows || []).forEach(function (r) {
      var a = el("a", "t", str(r.path));
      a.href = "/view/" + str(r.path).split("/").map(encodeURIComponent).join("/");
      tb.body.appendChild(el("tr", null, td(str(r.kind)), td(a, "mono")));
    });
    root.appendChild((P.rows || []).length ? tb.table : el("p", "muted", "nothing to show here"));
  }
  try {
    if (P.kind === "question") renderQuestion(P, app);
    else if (P.kind === "index") renderIndex(P, app);
    else {
      listView = el("div");
      app.appendChild(listView);
      renderTable(P, listView);
      window.addEventListener("hashchange", route);
      route();
    }
  } catch (err) {
    app.appendChild(el("pre", "err", "the viewer failed: " + str(err && err.stack || err)));
    throw err;
  }
  if (window.performance && performance.mark) performance.mark("pyrag-view-rendered");
})();
