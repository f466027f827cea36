// stocksync dashboard: reads GET /v1/stream (server-sent events) and draws each snapshot.
// Plain JS, no build step. The stream is read with fetch() rather than EventSource so the API
// key travels in the Authorization header, never in a URL. Open it as
//   /dashboard?sku=SKU-0001#key=<api key>      (the #fragment never reaches a server or a log)
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var params = new URLSearchParams(location.search);
  var fragment = new URLSearchParams(location.hash.slice(1));
  var sku = params.get("sku") || "";
  var key = fragment.get("key") || sessionStorage.getItem("stocksync.key") || "";
  if (fragment.get("key")) {
    sessionStorage.setItem("stocksync.key", key);
    history.replaceState(null, "", location.pathname + location.search);
  }
  $("sku").value = sku;
  $("key").value = key;

  var controller = null;
  var generation = 0;
  var rates = [];
  var frames = 0;

  function setStatus(live, text) {
    var el = $("status");
    el.textContent = text;
    el.className = "status " + (live ? "on" : "off");
  }

  function setText(id, value, flash) {
    var el = $(id);
    var text = value === null || value === undefined ? "–" : String(value);
    if (el.textContent !== text) {
      var first = el.textContent === "–";
      el.textContent = text;
      if (flash && !first) {
        el.classList.remove("changed");
        void el.offsetWidth; // restart the flash
        el.classList.add("changed");
      }
    }
  }

  function cell(row, text, classes) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (classes) td.className = classes;
    row.appendChild(td);
    return td;
  }

  function fillRows(tbody, rows, attribute) {
    // Rows are kept (and only their cells rewritten) so a changed number can flash.
    var seen = {};
    rows.forEach(function (r) {
      seen[r.id] = true;
      var tr = tbody.querySelector("tr[" + attribute + '="' + CSS.escape(r.id) + '"]');
      var before = tr ? tr.getAttribute("data-values") : null;
      var values = JSON.stringify(r.cells);
      if (before === values) return;
      if (!tr) {
        tr = document.createElement("tr");
        tr.setAttribute(attribute, r.id);
        tbody.appendChild(tr);
      }
      tr.setAttribute("data-values", values);
      tr.textContent = "";
      r.cells.forEach(function (c) { cell(tr, c[0], c[1]); });
      if (before !== null) {
        tr.classList.remove("changed");
        void tr.offsetWidth;
        tr.classList.add("changed");
      }
    });
    Array.prototype.slice.call(tbody.children).forEach(function (tr) {
      if (!seen[tr.getAttribute(attribute)]) tbody.removeChild(tr);
    });
  }

  function atpClass(n) { return "num atp" + (n === 0 ? " zero" : ""); }

  function renderItem(frame) {
    var item = frame.item;
    $("sku-title").textContent = frame.sku || "(pick a SKU)";
    $("no-sku").hidden = !(frame.sku && !item);
    setText("revision", item ? item.revision : null, true);
    var channels = [];
    if (item && item.channels) {
      Object.keys(item.channels).forEach(function (name) {
        var c = item.channels[name];
        channels.push({ id: name, cells: [[name, "name"], [c.atp, atpClass(c.atp)],
          [c.locations.join(", "), "small"]] });
      });
    } else if (item && item.channel) {
      channels.push({ id: item.channel, cells: [[item.channel, "name"],
        [item.atp, atpClass(item.atp)], [item.locations.join(", "), "small"]] });
    }
    fillRows($("channels").tBodies[0], channels, "data-channel");
    var locations = [];
    if (item && item.locations && !Array.isArray(item.locations)) {
      Object.keys(item.locations).forEach(function (name) {
        var l = item.locations[name];
        locations.push({ id: name, cells: [[name, "name"], [l.on_hand, "num"],
          [l.reserved, "num"], [l.damaged, "num"], [l.in_transit, "num"],
          [l.safety_stock, "num"], [l.oversold, "num" + (l.oversold ? " zero" : "")],
          [l.atp, atpClass(l.atp)]] });
      });
    }
    fillRows($("locations").tBodies[0], locations, "data-location");
  }

  function ms(v) { return v === null || v === undefined ? "–" : v < 10 ? v.toFixed(2) : v.toFixed(0); }

  function renderSystem(s) {
    setText("events-per-s", s.events_per_s === undefined ? null : (s.events_per_s === null ? 0 : s.events_per_s));
    setText("lag-total", s.lag_total);
    if (s.lag) {
      var behind = s.lag.filter(function (p) { return p.lag; }).length;
      $("lag-detail").textContent = s.lag.length + " partitions, " + behind + " behind";
    }
    var lat = s.latency || {};
    setText("fold-latency", ms(lat.fold_p50_ms) + " / " + ms(lat.fold_p99_ms));
    setText("event-age", ms(lat.event_age_p50_ms) + " / " + ms(lat.event_age_p99_ms));
    setText("applied", s.applied);
    setText("duplicates", s.duplicates);
    setText("dead-lettered", s.dead_lettered);
    setText("oversells", s.oversells, true);
    setText("drift-alerts", s.drift_alerts, true);
    $("ready").textContent = s.ready === undefined ? "–" : s.ready ? "ready" : "not ready";
    rates.push(s.events_per_s || 0);
    if (rates.length > 120) rates.shift();
    drawRates();
  }

  function drawRates() { drawLine($("rate-chart"), rates, false); }

  // A line chart of `values` filling the canvas; `steps`: each value held until the next.
  function drawLine(canvas, values, steps) {
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    var top = Math.max.apply(null, values.concat([1]));
    ctx.strokeStyle = "#2c5fd6";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    var slots = steps ? values.length : Math.max(values.length - 1, 1);
    values.forEach(function (v, i) {
      var x = (i / slots) * (w - 2) + 1;
      var y = h - 2 - (v / top) * (h - 4);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      if (steps) ctx.lineTo(((i + 1) / slots) * (w - 2) + 1, y);
    });
    ctx.stroke();
  }

  function renderAlerts(ul, alerts, none) {
    var ids = alerts.map(function (a) { return a.alert_id; }).join("|");
    if (ul.getAttribute("data-ids") === ids) return;
    ul.setAttribute("data-ids", ids);
    ul.textContent = "";
    if (!alerts.length) {
      var empty = document.createElement("li");
      empty.className = "hint";
      empty.textContent = none;
      ul.appendChild(empty);
    }
    alerts.forEach(function (a) {
      var li = document.createElement("li");
      li.setAttribute("data-type", a.type);
      li.setAttribute("data-sku", a.sku);
      var badge = document.createElement("span");
      badge.className = "badge " + a.type;
      badge.textContent = a.type;
      li.appendChild(badge);
      if (a.as_of) {
        // event time of the alert: the time of day, the date when it is not today's
        var when = new Date(a.as_of);
        var time = document.createElement("time");
        time.dateTime = when.toISOString();
        time.textContent = when.toDateString() === new Date().toDateString()
          ? when.toLocaleTimeString() : when.toLocaleString();
        li.appendChild(time);
      }
      var where = a.channel || a.location || "";
      li.appendChild(document.createTextNode(a.sku + (where ? " @ " + where : "") + ": " + a.message));
      ul.appendChild(li);
    });
  }

  function render(frame) {
    if ($("status").className !== "status on") setStatus(true, "live");
    frames += 1;
    document.body.setAttribute("data-frames", String(frames));
    renderItem(frame);
    renderSystem(frame.system || {});
    renderAlerts($("critical-alerts"), frame.critical_alerts || [], "No oversell or drift.");
    renderAlerts($("alerts"), frame.alerts || [], "No stock-level alerts.");
    refreshHistory(frame);
    $("updated").textContent = "updated " + new Date(frame.at).toLocaleTimeString();
  }

  function handleBlock(block) {
    var name = "message";
    var data = [];
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) name = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
    });
    if (name === "snapshot" && data.length) render(JSON.parse(data.join("\n")));
  }

  function connect() {
    var mine = ++generation;
    if (controller) controller.abort();
    controller = new AbortController();
    var url = "/v1/stream" + (sku ? "?sku=" + encodeURIComponent(sku) : "");
    var headers = { Accept: "text/event-stream" };
    if (key) headers.Authorization = "Bearer " + key;
    setStatus(false, "connecting");
    fetch(url, { headers: headers, signal: controller.signal, cache: "no-store" })
      .then(function (resp) {
        if (!resp.ok) {
          return resp.json().catch(function () { return {}; }).then(function (body) {
            var text = resp.status + ": " + (body.message || resp.statusText);
            var fatal = resp.status === 401 || resp.status === 403;
            setStatus(false, text);
            document.body.setAttribute("data-error", String(resp.status));
            if (!fatal) throw new Error(text);
          });
        }
        document.body.removeAttribute("data-error");
        // "live" only once the first snapshot has arrived (render)
        setStatus(false, "connecting…");
        var reader = resp.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new Error("stream ended");
            buffer += decoder.decode(chunk.value, { stream: true });
            var at;
            while ((at = buffer.indexOf("\n\n")) >= 0) {
              handleBlock(buffer.slice(0, at));
              buffer = buffer.slice(at + 2);
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        if (mine !== generation) return;
        setStatus(false, "reconnecting");
        setTimeout(function () { if (mine === generation) connect(); }, 1000);
      });
  }

  function api(path) {
    var headers = { Accept: "application/json" };
    if (key) headers.Authorization = "Bearer " + key;
    return fetch(path, { headers: headers, cache: "no-store" }).then(function (resp) {
      return resp.json().then(function (body) {
        if (!resp.ok) throw new Error(body.message || resp.statusText);
        return body;
      });
    });
  }

  // The search box: SKUs starting with what was typed, from GET /v1/skus (every worker's).
  var searching = null;
  $("sku").addEventListener("input", function () {
    var prefix = $("sku").value.trim();
    clearTimeout(searching);
    if (!prefix) return;
    searching = setTimeout(function () {
      api("/v1/skus?limit=10&prefix=" + encodeURIComponent(prefix)).then(function (page) {
        if ($("sku").value.trim() !== prefix) return; // typed on meanwhile
        var list = $("sku-options");
        list.textContent = "";
        page.items.forEach(function (item) {
          var option = document.createElement("option");
          option.value = item.sku;
          var told = Object.keys(item.channels || {}).map(function (c) {
            return c + " " + item.channels[c];
          });
          option.label = told.join(", ");
          list.appendChild(option);
        });
        $("sku-hint").textContent = page.items.length
          ? page.items.length + (page.next_cursor ? "+" : "") + " found" : "no SKU starts so";
      }).catch(function (e) { $("sku-hint").textContent = "search: " + e.message; });
    }, 200);
  });

  // Per channel, the quantities it was told, oldest to newest: a small step chart each.
  var historyOf = null;
  var historyAt = 0;
  function refreshHistory(frame) {
    var item = frame.item;
    var channels = item && item.channels ? Object.keys(item.channels)
      : item && item.channel ? [item.channel] : [];
    if (!frame.sku || !item) return;
    // again when the SKU moved, else every few seconds (a failed fetch is retried)
    var stamp = frame.sku + "@" + item.revision;
    var now = Date.now();
    if (stamp === historyOf && now - historyAt < 5000) return;
    historyOf = stamp;
    historyAt = now;
    var box = $("history");
    channels.forEach(function (channel) {
      var path = "/v1/channels/" + encodeURIComponent(channel) + "/skus/" +
        encodeURIComponent(frame.sku) + "/history?limit=50";
      api(path).then(function (page) {
        var quantities = page.entries.map(function (e) { return e.quantity; }).reverse();
        var row = box.querySelector('.history-row[data-channel="' + CSS.escape(channel) + '"]');
        if (!row) {
          row = document.createElement("div");
          row.className = "history-row";
          row.setAttribute("data-channel", channel);
          row.innerHTML = '<span class="name"></span><canvas width="300" height="32"></canvas>' +
            '<span class="small num"></span>';
          row.querySelector(".name").textContent = channel;
          box.appendChild(row);
        }
        row.setAttribute("data-points", String(quantities.length));
        row.querySelector(".num").textContent = quantities.length + " told";
        drawLine(row.querySelector("canvas"), quantities, true);
      }).catch(function () { /* no history (yet) for this channel: nothing to draw */ });
    });
    Array.prototype.slice.call(box.children).forEach(function (row) {
      if (channels.indexOf(row.getAttribute("data-channel")) < 0) box.removeChild(row);
    });
  }

  $("pick").addEventListener("submit", function (event) {
    event.preventDefault();
    sku = $("sku").value.trim();
    key = $("key").value.trim();
    if (key) sessionStorage.setItem("stocksync.key", key); else sessionStorage.removeItem("stocksync.key");
    var query = sku ? "?sku=" + encodeURIComponent(sku) : "";
    history.replaceState(null, "", location.pathname + query);
    connect();
  });

  connect();
})();
