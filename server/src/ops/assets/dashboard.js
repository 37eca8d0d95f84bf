// Conclave dashboard: polls /api/cluster once a second and redraws the page.
// Everything is built with DOM calls and textContent (lock and owner names come from
// clients), sparklines are inline SVG. No libraries, no external resources.
"use strict";

(function () {
  const REFRESH_MS = 1000;
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function byId(id) { return document.getElementById(id); }
  function setText(id, text) { byId(id).textContent = text; }

  function fmtInt(n) {
    if (n === null || n === undefined) return "–";
    return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + " " + units[i];
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    return fmtDuration(Math.round(ms / 1000));
  }

  function fmtDuration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  function fmtPct(r) {
    return (r * 100).toFixed(1) + "%";
  }

  // An inline SVG sparkline of `values` (oldest first), `w`×`h` user units.
  function sparkline(values, w, h, color) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const vals = values || [];
    const max = Math.max(1, ...vals);
    const title = document.createElementNS(SVG, "title");
    title.textContent = vals.length
      ? "ops/s over the last " + vals.length + " s (max " + fmtInt(max) + ")"
      : "no samples";
    svg.appendChild(title);
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("x1", 0); base.setAttribute("x2", w);
    base.setAttribute("y1", h - 0.5); base.setAttribute("y2", h - 0.5);
    base.setAttribute("stroke", "#e3e8ee");
    svg.appendChild(base);
    if (vals.length < 2) return svg;
    const step = w / 59; // the history holds up to 60 one-second samples
    const x0 = w - step * (vals.length - 1);
    const pts = vals.map((v, i) =>
      (x0 + i * step).toFixed(1) + "," + (h - 1 - (v / max) * (h - 3)).toFixed(1));
    const area = document.createElementNS(SVG, "polygon");
    area.setAttribute("points",
      x0.toFixed(1) + "," + h + " " + pts.join(" ") + " " + w + "," + h);
    area.setAttribute("fill", color);
    area.setAttribute("fill-opacity", "0.12");
    svg.appendChild(area);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.appendChild(line);
    return svg;
  }

  function fill(tbodyParent, rows, emptyText, cols) {
    const tbody = byId(tbodyParent).querySelector("tbody");
    tbody.replaceChildren();
    if (!rows.length) {
      tbody.appendChild(el("tr", {}, el("td", { class: "empty", colspan: cols }, emptyText)));
      return;
    }
    for (const r of rows) tbody.appendChild(r);
  }

  function roleBadge(role) {
    const r = role || "unknown";
    return el("span", { class: "badge role-" + r, "data-role": r }, role || "unknown");
  }

  function renderHeader(c, leaderId) {
    const up = c.nodes.filter((n) => n.up).length;
    const group = c.groups[0] || {};
    const summary = byId("summary");
    summary.replaceChildren(
      el("b", {}, c.nodes.length + " nodes"), " · ",
      el("b", {}, up + " up"), " · leader ",
      el("b", {}, leaderId === null || leaderId === undefined ? "none" : "node " + leaderId),
      " · term " + fmtInt(group.term) + " · served by node " + c.served_by +
        " · updated " + new Date(c.generated_at_ms).toLocaleTimeString());
    const health = byId("health");
    let cls = "pill-ok";
    let text = "healthy";
    if (leaderId === null || leaderId === undefined) {
      cls = "pill-bad"; text = "no leader";
    } else if (up < c.nodes.length) {
      cls = "pill-warn"; text = "degraded";
    }
    health.className = "pill " + cls;
    health.textContent = text;
  }

  function renderCards(c, leaderId) {
    const up = c.nodes.filter((n) => n.up).length;
    const group = c.groups[0] || {};
    setText("kpi-ops", fmtInt(c.ops_per_sec));
    byId("kpi-ops-spark").replaceChildren(sparkline(c.ops_history, 240, 30, "#2f6fde"));
    setText("kpi-nodes", up + " / " + c.nodes.length);
    const down = c.nodes.filter((n) => !n.up).map((n) => "node " + n.id);
    setText("kpi-nodes-sub", down.length ? "down: " + down.join(", ") : "all members answering");
    setText("kpi-leader", leaderId === null || leaderId === undefined ? "none" : "node " + leaderId);
    setText("kpi-leader-sub", "term " + fmtInt(group.term) + " · commit " + fmtInt(group.commit_index));
    const locks = c.locks || {};
    setText("kpi-locks", fmtInt(locks.locked_resources || 0) + " held");
    setText("kpi-locks-sub", fmtInt(locks.waiters || 0) + " waiting · " +
      fmtInt(locks.grants || 0) + " grants · " + fmtInt(locks.deadlocks || 0) + " deadlocks");
    const cache = c.cache || {};
    const reads = (cache.hits || 0) + (cache.misses || 0);
    setText("kpi-cache", reads ? fmtPct(cache.hit_rate) : "–");
    setText("kpi-cache-sub", fmtInt(cache.keys) + " keys · " + fmtBytes(cache.bytes) +
      " data · " + fmtBytes(cache.used_memory) + " memory");
  }

  function renderNodes(c, leaderId) {
    const group = c.groups[0] || {};
    const commit = group.commit_index;
    const rows = c.nodes.map((n) => {
      const state = n.up
        ? el("span", { class: "state state-up" }, el("span", { class: "dot" }), "up")
        : el("span", { class: "state state-down", title: n.error || "" },
          el("span", { class: "dot" }), "down");
      const downNote = !n.up && n.last_seen_ms_ago !== null && n.last_seen_ms_ago !== undefined
        ? el("div", { class: "muted" }, "last answer " + fmtMs(n.last_seen_ms_ago) + " ago")
        : null;
      const lag = n.up && commit !== null && commit !== undefined &&
        n.applied_index !== null && commit > n.applied_index
        ? el("span", { class: "lag", title: "behind the leader's commit index" },
          "−" + fmtInt(commit - n.applied_index))
        : null;
      const quorum = n.quorum === null || n.quorum === undefined
        ? el("span", { class: "muted" }, "–")
        : el("span", { class: n.quorum ? "yes" : "no" }, n.quorum ? "yes" : "no");
      const dim = n.up ? null : "dim";
      return el("tr", {
        class: n.up ? "up" : "down",
        "data-node-id": n.id,
        "data-up": n.up ? "true" : "false",
        "data-role": n.role || "unknown",
        "data-leader": n.id === leaderId ? "true" : "false",
      },
      el("td", {}, el("b", {}, "node " + n.id)),
      el("td", {}, state, downNote),
      el("td", {}, roleBadge(n.role)),
      el("td", { class: "num " + (dim || "") }, fmtInt(n.term)),
      el("td", { class: "num " + (dim || "") }, fmtInt(n.commit_index)),
      el("td", { class: "num " + (dim || "") }, fmtInt(n.applied_index), lag),
      el("td", {}, quorum),
      el("td", { class: "num " + (dim || "") }, fmtInt(n.connected_clients)),
      el("td", { class: "num " + (dim || "") }, fmtInt(n.ops_per_sec)),
      el("td", { class: "spark" }, sparkline(n.ops_history, 120, 24, n.up ? "#2f6fde" : "#b3bcc6")),
      el("td", { class: "mono" }, n.client_addr || "–"),
      el("td", { class: "mono" }, n.cluster_addr),
      el("td", { class: "num " + (dim || "") }, fmtDuration(n.uptime_s)));
    });
    fill("nodes", rows, "no members", 13);
  }

  function renderGroups(c) {
    const rows = c.groups.map((g) => el("tr", { "data-group": g.group },
      el("td", {}, el("b", {}, String(g.group))),
      el("td", {}, g.name === "meta" ? "meta · locks" : g.name),
      el("td", { "data-leader-id": g.leader_id === null ? "none" : g.leader_id },
        g.leader_id === null ? el("span", { class: "no" }, "none")
          : el("span", { class: "badge role-leader" }, "node " + g.leader_id)),
      el("td", { class: "num" }, fmtInt(g.term)),
      el("td", { class: "num" }, fmtInt(g.commit_index)),
      el("td", {}, el("span", { class: g.voters_up * 2 > g.voters ? "yes" : "no" },
        g.voters_up + " / " + g.voters))));
    fill("groups", rows, "no groups", 6);
  }

  function renderCache(c) {
    const rows = c.nodes.map((n) => {
      const k = n.cache;
      if (!n.up || !k) {
        return el("tr", { class: "down" }, el("td", {}, "node " + n.id),
          el("td", { class: "muted", colspan: 7 }, "down"));
      }
      const reads = k.hits + k.misses;
      const pct = reads ? k.hit_rate : 0;
      return el("tr", {},
        el("td", {}, "node " + n.id),
        el("td", { class: "num" }, fmtInt(k.keys)),
        el("td", { class: "num" }, fmtBytes(k.bytes)),
        el("td", { class: "num" }, fmtBytes(k.used_memory)),
        el("td", { class: "num" }, fmtInt(k.hits)),
        el("td", { class: "num" }, fmtInt(k.misses)),
        el("td", {}, el("div", { class: "rate" },
          el("div", { class: "bar" }, el("span", { style: "width:" + (pct * 100).toFixed(1) + "%" })),
          el("span", { class: "num" }, reads ? fmtPct(pct) : "–"))),
        el("td", { class: "num" }, fmtInt(k.evictions)));
    });
    fill("cache", rows, "no nodes", 8);
  }

  function renderLocks(c) {
    const locks = c.locks || { resources: [], more_resources: 0 };
    const more = locks.more_resources || 0;
    setText("locks-note",
      (locks.source_node ? "as applied by node " + locks.source_node : "") +
      (more ? " · showing " + locks.resources.length + ", " + fmtInt(more) + " more not listed" : ""));
    const rows = locks.resources.map((r) => {
      const holders = r.holders.map((h) => el("span", { class: "chip" }, h.owner,
        el("span", { class: "muted" }, "#" + h.token + " · " + fmtMs(h.ttl_ms))));
      if (r.more_holders) holders.push(el("span", { class: "muted" }, "+" + r.more_holders + " more"));
      const waiters = r.waiters.map((w) => el("span", { class: "chip" }, w.owner,
        el("span", { class: "muted" }, w.mode + " · " + fmtMs(w.waited_ms))));
      if (r.more_waiters) waiters.push(el("span", { class: "muted" }, "+" + r.more_waiters + " more"));
      return el("tr", { "data-resource": r.resource },
        el("td", { class: "mono" }, r.resource),
        el("td", {}, el("span", { class: "badge mode-" + r.mode }, r.mode)),
        el("td", {}, ...(holders.length ? holders : [el("span", { class: "muted" }, "–")])),
        el("td", {}, ...(waiters.length ? waiters : [el("span", { class: "muted" }, "–")])));
    });
    fill("locks", rows, "no lock is held or awaited", 4);
  }

  function render(c) {
    const leaderId = (c.groups[0] || {}).leader_id;
    renderHeader(c, leaderId);
    renderCards(c, leaderId);
    renderNodes(c, leaderId);
    renderGroups(c);
    renderCache(c);
    renderLocks(c);
    document.body.setAttribute("data-updated", String(c.generated_at_ms));
  }

  async function refresh() {
    const banner = byId("banner");
    try {
      const resp = await fetch("api/cluster", { cache: "no-store" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      render(await resp.json());
      banner.hidden = true;
    } catch (e) {
      banner.textContent = "Cannot reach this node's /api/cluster (" + e.message +
        "); showing the last data received. Retrying every second.";
      banner.hidden = false;
      const health = byId("health");
      health.className = "pill pill-wait";
      health.textContent = "offline";
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
