// memlens flame graph page. Reads the JSON in #memlens-data, draws the timeline and an icicle
// graph. Names come from the profiled program: they are only ever set with textContent.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("memlens-data").textContent);
  const ROW = 18;
  const SVG = "http://www.w3.org/2000/svg";
  const vscode = typeof acquireVsCodeApi === "function" ? acquireVsCodeApi() : null;

  const $ = (id) => document.getElementById(id);
  const state = { inverted: !!DATA.inverted, hideImport: false, onlyMine: false, zoom: [], search: "" };

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
  const paths = new Array(N.parent.length);
  function pathOf(i) {
    if (paths[i]) return paths[i];
    const chain = [];
    for (let n = i; n >= 0; n = N.parent[n]) chain.push(N.frame[n]);
    chain.reverse(); // caller -> callee
    paths[i] = chain;
    return chain;
  }
  function hidden(frame) {
    const kind = F.kind[frame];
    if (kind === "import") return state.hideImport || state.onlyMine;
    if (kind === "library") return state.onlyMine;
    return false;
  }
  function newNode(frame, parent) {
    return { frame: frame, value: 0, count: 0, self: 0, children: new Map(), parent: parent };
  }
  function buildTree() {
    const root = newNode(-1, null);
    for (let i = 0; i < N.parent.length; i++) {
      if (N.value[i] === 0 && N.count[i] === 0) continue;
      let path = pathOf(i).filter((f) => !hidden(f));
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
  function label(frame) {
    return frame < 0 ? "all: " + DATA.title : F.function[frame];
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
    function place(node, depth, x, w, ancestor) {
      if (w < 0.5) return; // below a pixel: not drawn (its bytes still count in its parent)
      const el = document.createElement("div");
      const kind = node.frame < 0 ? "root" : F.kind[node.frame];
      el.className = "frame " + kind + (ancestor ? " ancestor" : "");
      el.dataset.index = String(drawn.length);
      el.style.left = x + "px";
      el.style.width = Math.max(w, 1) + "px";
      el.style.top = depth * ROW + "px";
      if (node.frame >= 0) el.style.setProperty("--shift", String(shade(node.frame)));
      el.textContent = label(node.frame);
      if (needle && node.frame >= 0) {
        const hay = (F.function[node.frame] + " " + F.file[node.frame]).toLowerCase();
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
    flame.replaceChildren(fragment);
    flame.style.height = (depthMax + 1) * ROW + "px";
    $("match").textContent = needle ? matched + " matching frame" + (matched === 1 ? "" : "s") : "";
  }

  function describe(node) {
    const parts = [];
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = label(node.frame);
    parts.push(name);
    if (node.frame >= 0 && F.file[node.frame]) {
      const where = document.createElement("div");
      where.className = "where";
      where.textContent = F.file[node.frame] + ":" + F.line[node.frame];
      parts.push(where);
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
  function drawTimeline() {
    const chart = $("timeline");
    const T = DATA.timeline;
    const width = chart.clientWidth || 800;
    const height = chart.clientHeight || 130;
    chart.setAttribute("viewBox", "0 0 " + width + " " + height);
    const left = 64, right = 12, top = 14, bottom = 18;
    const items = [];
    if (T.t_ms.length === 0) {
      items.push(svg("text", { x: left, y: height / 2 }, "no timeline samples in this capture"));
      chart.replaceChildren(...items);
      return;
    }
    const tMax = Math.max(T.t_ms[T.t_ms.length - 1], DATA.peak_ms, 1);
    const yMax = Math.max(...T.heap, ...T.rss, DATA.peak_bytes, 1);
    const sx = (t) => left + ((width - left - right) * t) / tMax;
    const sy = (v) => height - bottom - ((height - top - bottom) * v) / yMax;
    items.push(svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }));
    items.push(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }));
    items.push(svg("text", { x: 4, y: top + 4 }, formatBytes(yMax)));
    items.push(svg("text", { x: 4, y: height - bottom }, "0 B"));
    items.push(svg("text", { x: left, y: height - 4 }, "0 s"));
    items.push(svg("text", { x: width - right - 40, y: height - 4 }, (tMax / 1000).toFixed(2) + " s"));
    const line = (values, cls) =>
      svg("polyline", { class: cls, points: T.t_ms.map((t, i) => sx(t).toFixed(1) + "," + sy(values[i]).toFixed(1)).join(" ") });
    items.push(line(T.rss, "rss"));
    items.push(line(T.heap, "heap"));
    if (T.t_ms.length < 3) {
      items.push(svg("text", { x: left + 8, y: top + 16 }, "only " + T.t_ms.length + " timeline sample(s): the run was shorter than the sampling interval"));
    }
    const px = sx(DATA.peak_ms);
    items.push(svg("line", { class: "peak", x1: px, y1: top, x2: px, y2: height - bottom }));
    items.push(svg("circle", { class: "peak-label", cx: px, cy: sy(DATA.peak_bytes), r: 3 }));
    const text = "peak " + formatBytes(DATA.peak_bytes) + " at " + (DATA.peak_ms / 1000).toFixed(2) + " s";
    const anchor = px > width / 2 ? "end" : "start";
    items.push(svg("text", { class: "peak-label", x: px + (anchor === "end" ? -4 : 4), y: top - 3, "text-anchor": anchor }, text));
    items.push(svg("text", { class: "heap-label", x: width - right - 110, y: top - 3 }, "— heap"));
    items.push(svg("text", { class: "rss-label", x: width - right - 50, y: top - 3 }, "- - RSS"));
    chart.replaceChildren(...items);
  }

  // ---- header and controls --------------------------------------------------------------------
  $("heading").textContent = "memlens: " + DATA.title;
  $("subtitle").textContent =
    (DATA.argv.length ? DATA.argv.join(" ") + " · " : "") +
    formatBytes(DATA.total) + " in " + DATA.total_count.toLocaleString() + " allocations" +
    (DATA.complete ? "" : " · partial capture (the run was still going or was killed)");
  $("merged-note").textContent = DATA.merged_nodes
    ? DATA.merged_nodes + " frames under " + (DATA.threshold_share * 100).toFixed(1) +
      "% of the total (" + formatBytes(DATA.threshold) + ") are merged into \"(n small frames)\" nodes."
    : "";
  $("inverted").checked = state.inverted;
  $("inverted").addEventListener("change", (e) => { state.inverted = e.target.checked; state.zoom = []; draw(); });
  $("hide-import").addEventListener("change", (e) => { state.hideImport = e.target.checked; state.zoom = []; draw(); });
  $("only-mine").addEventListener("change", (e) => { state.onlyMine = e.target.checked; state.zoom = []; draw(); });
  $("reset-zoom").addEventListener("click", () => { state.zoom = []; draw(); });
  $("search").addEventListener("input", (e) => { state.search = e.target.value; draw(); });
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { drawTimeline(); draw(); }, 100);
  });
  drawTimeline();
  draw();
})();
