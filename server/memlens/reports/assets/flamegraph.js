// memlens flame graph page. Reads the JSON in #memlens-data, draws the timeline and an icicle
// graph. Names come from the profiled program: they are only ever set with textContent.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("memlens-data").textContent);
  const ROW = 18;
  const SVG = "http://www.w3.org/2000/svg";
  const vscode = typeof acquireVsCodeApi === "function" ? acquireVsCodeApi() : null;

  const $ = (id) => document.getElementById(id);
  const state = {
    inverted: !!DATA.inverted, flames: false, hideImport: false, onlyMine: false, zoom: [], search: "",
  };

  function formatBytes(n) {
    const sign = n < 0 ? "-" : "";
    let v = Math.abs(n);
    if (v < 1024) return sign + Math.floor(v) + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    for (let i = 0; i < units.length; i++) {
      v /= 1024;
      if (v < 1024 || i === units.length - 1) return sign + v.toFixed(1) + " " + units[i];
    }
    return sign + v + " B";
  }
  // control characters from the program's names, shown as escapes (\x1b) instead of invisibly
  const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
  function visible(text) {
    return String(text).replace(CONTROL, (c) => {
      const code = c.charCodeAt(0);
      return code < 0x100 ? "\\x" + code.toString(16).padStart(2, "0") : "\\u" + code.toString(16).padStart(4, "0");
    });
  }
  const percent = (part, whole) => (whole > 0 ? ((100 * part) / whole).toFixed(1) : "0.0") + "%";

  // Messages to the host: a VS Code webview, an embedding page, and a DOM event for anyone else.
  function openSource(file, line) {
    const message = { type: "open", file: file, line: line };
    if (vscode) {
      vscode.postMessage(message);
    } else if (window.parent) {
      window.parent.postMessage(message, "*");
    }
    document.dispatchEvent(new CustomEvent("memlens-open", { detail: message }));
  }

  // ---- the tree, rebuilt from the pruned trie for each view ------------------------------------
  const F = DATA.frames;
  const N = DATA.nodes;
  // two frames of the page's own: imports entered with no line above them, and code with no
  // frame of the user's above it (seen when only the user's code is shown)
  function pseudoFrame(name, kind) {
    F.function.push(name); F.file.push(""); F.line.push(0); F.kind.push(kind); F.source.push("");
    return F.function.length - 1;
  }
  const IMPORTS = pseudoFrame("(imports)", "import");
  const OTHER = pseudoFrame("(code not yours, called from no line of yours)", "small");
  const paths = new Array(N.parent.length);
  function pathOf(i) {
    if (paths[i]) return paths[i];
    const chain = [];
    for (let n = i; n >= 0; n = N.parent[n]) chain.push(N.frame[n]);
    chain.reverse(); // caller -> callee
    paths[i] = chain;
    return chain;
  }
  // The path of a stack as the view shows it. Hiding the import system charges an import to the
  // line that imported and drops everything below it (importlib and the module's own code);
  // "only my code" then charges library frames and merged slivers to the user's line above them.
  function viewPath(path) {
    let out = path;
    if (state.hideImport || state.onlyMine) {
      const at = out.findIndex((f) => F.kind[f] === "import");
      if (at >= 0) out = at > 0 ? out.slice(0, at) : [IMPORTS];
    }
    if (state.onlyMine) {
      const mine = out.filter((f) => F.kind[f] === "user" || F.kind[f] === "none" || f === IMPORTS);
      out = mine.length ? mine : [OTHER];
    }
    return out;
  }
  function newNode(frame, parent) {
    return { frame: frame, value: 0, count: 0, self: 0, children: new Map(), parent: parent };
  }
  function buildTree() {
    const root = newNode(-1, null);
    for (let i = 0; i < N.parent.length; i++) {
      if (N.value[i] === 0 && N.count[i] === 0) continue;
      let path = viewPath(pathOf(i));
      if (state.inverted) path = path.slice().reverse();
      let node = root;
      node.value += N.value[i];
      node.count += N.count[i];
      for (const frame of path) {
        let child = node.children.get(frame);
        if (!child) {
          child = newNode(frame, node);
          node.children.set(frame, child);
        }
        child.value += N.value[i];
        child.count += N.count[i];
        node = child;
      }
      node.self += N.value[i];
    }
    return root;
  }
  function frameKey(frame) {
    return frame < 0 ? "" : F.function[frame] + "\u0000" + F.file[frame] + "\u0000" + F.line[frame];
  }
  // a box shows its line's source text (`c = a + b`), else its function's name
  function label(frame) {
    return frame < 0 ? "all: " + DATA.title : visible(F.source[frame] || F.function[frame]);
  }

  // a stable hue shift per function, so neighbours of one kind can be told apart
  const shades = new Map();
  function shade(frame) {
    const name = F.function[frame];
    if (!shades.has(name)) {
      let hash = 0;
      for (let i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) | 0;
      shades.set(name, (Math.abs(hash) % 25) - 12);
    }
    return shades.get(name);
  }

  // ---- drawing --------------------------------------------------------------------------------
  const flame = $("flame");
  const tooltip = $("tooltip");
  let drawn = []; // index in the DOM -> tree node
  let root = null;

  function zoomTarget(tree) {
    // the zoom is kept as frame keys from the root, so it survives rebuilding the tree
    let node = tree;
    for (const key of state.zoom) {
      let next = null;
      for (const child of node.children.values()) {
        if (frameKey(child.frame) === key) next = child;
      }
      if (!next) break;
      node = next;
    }
    return node;
  }
  function draw() {
    root = buildTree();
    const target = zoomTarget(root);
    const width = flame.clientWidth || 800;
    const needle = state.search.toLowerCase();
    const fragment = document.createDocumentFragment();
    drawn = [];
    let matched = 0;
    let depthMax = 0;
    const placed = [];
    function place(node, depth, x, w, ancestor) {
      if (w < 0.5) return; // below a pixel: not drawn (its bytes still count in its parent)
      const el = document.createElement("div");
      const kind = node.frame < 0 ? "root" : F.kind[node.frame];
      el.className = "frame " + kind + (ancestor ? " ancestor" : "");
      el.dataset.index = String(drawn.length);
      el.style.left = x + "px";
      el.style.width = Math.max(w, 1) + "px";
      placed.push([el, depth]);
      if (node.frame >= 0) el.style.setProperty("--shift", String(shade(node.frame)));
      el.textContent = label(node.frame);
      if (needle && node.frame >= 0) {
        const f = node.frame;
        const hay = (F.function[f] + " " + F.file[f] + " " + F.source[f]).toLowerCase();
        if (hay.includes(needle)) {
          el.classList.add("match");
          matched++;
        }
      }
      drawn.push(node);
      fragment.appendChild(el);
      depthMax = Math.max(depthMax, depth);
    }
    // ancestors of the zoomed node, full width
    const chain = [];
    for (let n = target; n; n = n.parent) chain.push(n);
    chain.reverse();
    chain.forEach((n, depth) => place(n, depth, 0, width, n !== target));
    const base = chain.length - 1;
    function layout(node, depth, x, w) {
      let cursor = x;
      const children = Array.from(node.children.values()).sort((a, b) => b.value - a.value);
      for (const child of children) {
        const cw = node.value > 0 ? (w * child.value) / node.value : 0;
        place(child, depth, cursor, cw, false);
        if (cw >= 0.5) layout(child, depth + 1, cursor, cw);
        cursor += cw;
      }
    }
    layout(target, base + 1, 0, width);
    // icicles: the root on top; flames: the root at the bottom
    for (const [el, depth] of placed) el.style.top = (state.flames ? depthMax - depth : depth) * ROW + "px";
    flame.replaceChildren(fragment);
    flame.style.height = (depthMax + 1) * ROW + "px";
    $("match").textContent = needle ? matched + " matching frame" + (matched === 1 ? "" : "s") : "";
  }

  function describe(node) {
    const parts = [];
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = node.frame < 0 ? label(node.frame) : visible(F.function[node.frame]);
    parts.push(name);
    if (node.frame >= 0 && F.file[node.frame]) {
      const where = document.createElement("div");
      where.className = "where";
      where.textContent = visible(F.file[node.frame]) + ":" + F.line[node.frame];
      parts.push(where);
    }
    if (node.frame >= 0 && F.source[node.frame]) {
      const source = document.createElement("code");
      source.className = "source";
      source.textContent = visible(F.source[node.frame]);
      parts.push(source);
    }
    const numbers = document.createElement("div");
    numbers.textContent =
      formatBytes(node.value) + " in " + node.count.toLocaleString() + " allocation" +
      (node.count === 1 ? "" : "s") + " · " + percent(node.value, root.value) + " of " + DATA.title;
    parts.push(numbers);
    if (node.self > 0 && node.children.size > 0) {
      const own = document.createElement("div");
      own.textContent = "own: " + formatBytes(node.self);
      parts.push(own);
    }
    return parts;
  }

  function nodeAt(event) {
    const el = event.target.closest ? event.target.closest(".frame") : null;
    return el ? drawn[Number(el.dataset.index)] : null;
  }
  flame.addEventListener("mousemove", (event) => {
    const node = nodeAt(event);
    if (!node) {
      tooltip.hidden = true;
      return;
    }
    tooltip.replaceChildren(...describe(node));
    tooltip.hidden = false;
    const x = Math.min(event.clientX + 12, window.innerWidth - tooltip.offsetWidth - 4);
    tooltip.style.left = Math.max(0, x) + "px";
    tooltip.style.top = event.clientY + 16 + "px";
  });
  flame.addEventListener("mouseleave", () => {
    tooltip.hidden = true;
  });
  flame.addEventListener("click", (event) => {
    const node = nodeAt(event);
    if (!node) return;
    const keys = [];
    for (let n = node; n && n.parent; n = n.parent) keys.push(frameKey(n.frame));
    state.zoom = keys.reverse();
    if (node.frame >= 0 && F.file[node.frame] && F.line[node.frame] > 0) {
      openSource(F.file[node.frame], F.line[node.frame]);
    }
    draw();
  });

  // ---- timeline -------------------------------------------------------------------------------
  function svg(name, attributes, text) {
    const el = document.createElementNS(SVG, name);
    for (const key in attributes) el.setAttribute(key, String(attributes[key]));
    if (text !== undefined) el.textContent = text;
    return el;
  }
  const T = DATA.timeline;
  const tEnd = Math.max(T.t_ms.length ? T.t_ms[T.t_ms.length - 1] : 0, DATA.peak_ms, 1);
  const PAD = { left: 64, right: 12, top: 22, bottom: 18 };
  // Draws heap and RSS between times t0 and t1 (ms) into `chart`; returns the x scale's inverse
  // (pixel -> ms) for zooming by dragging.
  function drawTimeline(chart, t0, t1) {
    const width = chart.clientWidth || 800;
    const height = chart.clientHeight || 130;
    chart.setAttribute("viewBox", "0 0 " + width + " " + height);
    const { left, right, top, bottom } = PAD;
    const items = [];
    if (T.t_ms.length === 0) {
      items.push(svg("text", { x: left, y: height / 2 }, "no timeline samples in this capture"));
      chart.replaceChildren(...items);
      return null;
    }
    const first = Math.max(0, T.t_ms.findIndex((t) => t >= t0) - 1);
    let last = T.t_ms.findIndex((t) => t > t1);
    last = last < 0 ? T.t_ms.length - 1 : last;
    const shown = T.t_ms.slice(first, last + 1).map((t, i) => [t, T.heap[first + i], T.rss[first + i]]);
    const peakShown = DATA.peak_ms >= t0 && DATA.peak_ms <= t1;
    const yMax = Math.max(1, peakShown ? DATA.peak_bytes : 0, ...shown.map((p) => Math.max(p[1], p[2])));
    const span = Math.max(t1 - t0, 1e-3);
    const sx = (t) => left + ((width - left - right) * (t - t0)) / span;
    const sy = (v) => height - bottom - ((height - top - bottom) * v) / yMax;
    const seconds = (t) => (t / 1000).toFixed(span < 2000 ? 3 : 2) + " s";
    items.push(svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }));
    items.push(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }));
    items.push(svg("text", { x: 4, y: top + 4 }, formatBytes(yMax)));
    items.push(svg("text", { x: 4, y: height - bottom }, "0 B"));
    items.push(svg("text", { class: "t-start", x: left, y: height - 4 }, seconds(t0)));
    items.push(svg("text", { class: "t-end", x: width - right, y: height - 4, "text-anchor": "end" }, seconds(t1)));
    const clip = "clip-" + chart.id;
    const clipPath = svg("clipPath", { id: clip });
    clipPath.appendChild(svg("rect", { x: left, y: 0, width: width - left - right, height: height }));
    items.push(clipPath);
    const line = (column, cls) =>
      svg("polyline", { class: cls, "clip-path": "url(#" + clip + ")", points: shown.map((p) => sx(p[0]).toFixed(1) + "," + sy(p[column]).toFixed(1)).join(" ") });
    items.push(line(2, "rss"));
    items.push(line(1, "heap"));
    if (T.t_ms.length < 3) {
      items.push(svg("text", { x: left + 8, y: top + 26 }, "only " + T.t_ms.length + " timeline sample(s): the run was shorter than the sampling interval"));
    }
    // the legend sits above the plot; the peak's label inside it, on the side with room
    items.push(svg("text", { class: "heap-label", x: width - right - 110, y: top - 8 }, "— heap"));
    items.push(svg("text", { class: "rss-label", x: width - right - 50, y: top - 8 }, "- - RSS"));
    if (peakShown) {
      const px = sx(DATA.peak_ms);
      items.push(svg("line", { class: "peak", x1: px, y1: top, x2: px, y2: height - bottom }));
      items.push(svg("circle", { class: "peak-label", cx: px, cy: sy(DATA.peak_bytes), r: 3 }));
      const text = "peak " + formatBytes(DATA.peak_bytes) + " at " + (DATA.peak_ms / 1000).toFixed(2) + " s";
      const flip = px > left + (width - left - right) * 0.6;
      items.push(svg("text", { class: "peak-label peak-text", x: px + (flip ? -6 : 6), y: top + 12, "text-anchor": flip ? "end" : "start" }, text));
    }
    chart.replaceChildren(...items);
    return (x) => t0 + ((x - left) * span) / (width - left - right);
  }

  // The larger memory graph: a modal; drag across it to zoom into that time range.
  const dialog = $("memory-dialog");
  const large = $("timeline-large");
  const zoomRange = [0, tEnd];
  let toTime = null;
  function drawLarge() {
    toTime = drawTimeline(large, zoomRange[0], zoomRange[1]);
    $("memory-range").textContent =
      (zoomRange[0] / 1000).toFixed(3) + " s to " + (zoomRange[1] / 1000).toFixed(3) + " s";
  }
  function openMemory() {
    if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
    drawLarge();
  }
  function zoomTo(a, b) {
    const lo = Math.max(0, Math.min(a, b));
    const hi = Math.min(tEnd, Math.max(a, b));
    if (hi - lo < 1) return; // a click, not a drag
    zoomRange[0] = lo;
    zoomRange[1] = hi;
    drawLarge();
  }
  let dragFrom = null;
  const chartX = (event) => event.clientX - large.getBoundingClientRect().left;
  large.addEventListener("mousedown", (event) => { dragFrom = chartX(event); event.preventDefault(); });
  large.addEventListener("mouseup", (event) => {
    if (dragFrom !== null && toTime) zoomTo(toTime(dragFrom), toTime(chartX(event)));
    dragFrom = null;
  });
  large.addEventListener("wheel", (event) => {
    if (!toTime) return;
    event.preventDefault();
    const at = toTime(chartX(event));
    const factor = event.deltaY < 0 ? 0.8 : 1.25;
    zoomTo(at - (at - zoomRange[0]) * factor, at + (zoomRange[1] - at) * factor);
  }, { passive: false });
  $("memory-reset").addEventListener("click", () => { zoomRange[0] = 0; zoomRange[1] = tEnd; drawLarge(); });
  $("memory-close").addEventListener("click", () => { if (dialog.close) dialog.close(); else dialog.removeAttribute("open"); });
  $("enlarge").addEventListener("click", openMemory);
  $("timeline").addEventListener("click", openMemory);

  // ---- the run's statistics -------------------------------------------------------------------
  function drawStats() {
    const R = DATA.run;
    const when = (ns) => (ns > 0 ? new Date(ns / 1e6).toISOString().replace("T", " ").replace("Z", " UTC") : "unknown");
    const rows = [
      ["Command", R.argv.length ? R.argv.join(" ") : "?"],
      ["Python", R.python_version || "unknown"],
      ["Platform", R.platform || "unknown"],
      ["Started", when(R.start_ns)],
      ["Ended", when(R.end_ns)],
      ["Duration", R.duration_s.toFixed(2) + " s"],
      ["Exit code", R.exit_code === null ? "unknown" : String(R.exit_code)],
      ["Allocators", R.python_allocators ? "Python objects and the malloc family (every allocation)" : "malloc family only (--no-python-allocators)"],
      ["Peak memory", formatBytes(R.peak_bytes) + " at " + R.peak_s.toFixed(2) + " s"],
      ["Peak RSS", formatBytes(R.rss_peak)],
      ["Total allocated", formatBytes(R.alloc_bytes) + " in " + R.alloc_count.toLocaleString("en-US") + " allocations"],
      ["Leaked at exit", formatBytes(R.leak_bytes)],
      ["Capture", R.complete ? "complete" : "partial (the run was still going or was killed)"],
      ["memlens", R.memlens_version || "unknown"],
    ];
    const list = $("run-stats-list");
    list.replaceChildren();
    for (const [key, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.textContent = visible(value);
      list.append(dt, dd);
    }
    drawRunTables(R);
  }

  // A table of the stats panel: a caption, a header row, then the rows (text only).
  function fillTable(id, caption, headers, rows) {
    const table = $(id);
    table.replaceChildren();
    table.createCaption().textContent = caption;
    if (headers.length) {
      const head = table.createTHead().insertRow();
      for (const text of headers) {
        const th = document.createElement("th");
        th.textContent = text;
        head.append(th);
      }
    }
    const body = table.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const text of row) tr.insertCell().textContent = visible(text);
    }
  }

  function drawRunTables(R) {
    const count = (n) => n.toLocaleString("en-US");
    if (R.allocators === null) {
      fillTable("run-allocators", "Allocators: not counted in this capture (made by an older memlens)", [], []);
    } else {
      fillTable("run-allocators", "Allocators", ["allocator", "allocations", "allocated", "share"],
        R.allocators.map((a) => [a.label, count(a.count), formatBytes(a.bytes),
          R.alloc_bytes ? (100 * a.bytes / R.alloc_bytes).toFixed(1) + "%" : ""]));
    }
    fillTable("run-sizes", R.size_histogram_estimated
      ? "Allocation sizes, ESTIMATED from the mean size of each line's allocations (this capture does not count sizes)"
      : "Allocation sizes (every allocation, counted exactly)",
    ["size", "count", "bytes"],
    R.size_histogram.map((b) => [b.label, count(b.count), formatBytes(b.bytes)]));
  }

  // ---- header and controls --------------------------------------------------------------------
  $("heading").textContent = "memlens: " + DATA.title;
  $("subtitle").textContent =
    (DATA.argv.length ? visible(DATA.argv.join(" ")) + " · " : "") +
    formatBytes(DATA.total) + " in " + DATA.total_count.toLocaleString() + " allocations" +
    (DATA.complete ? "" : " · partial capture (the run was still going or was killed)");
  $("merged-note").textContent = DATA.merged_nodes
    ? DATA.merged_nodes + " frames under " + (DATA.threshold_share * 100).toFixed(1) +
      "% of the total (" + formatBytes(DATA.threshold) + ") are merged into \"(n small frames)\" nodes."
    : "";
  $("inverted").checked = state.inverted;
  $("inverted").addEventListener("change", (e) => { state.inverted = e.target.checked; state.zoom = []; draw(); });
  $("flames").addEventListener("change", (e) => { state.flames = e.target.checked; draw(); });
  $("hide-import").addEventListener("change", (e) => { state.hideImport = e.target.checked; state.zoom = []; draw(); });
  $("only-mine").addEventListener("change", (e) => { state.onlyMine = e.target.checked; state.zoom = []; draw(); });
  $("reset-zoom").addEventListener("click", () => { state.zoom = []; draw(); });
  $("search").addEventListener("input", (e) => { state.search = e.target.value; draw(); });
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      drawTimeline($("timeline"), 0, tEnd);
      if (dialog.open) drawLarge();
      draw();
    }, 100);
  });
  drawTimeline($("timeline"), 0, tEnd);
  drawStats();
  draw();
})();
