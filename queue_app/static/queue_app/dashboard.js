// Queue dashboard (templates/admin/queue_app/dashboard.html): draws the JSON of
// queue_app.admin.dashboard.dashboard_data and fetches it again every data-refresh seconds.
(function () {
  "use strict";
  const root = document.getElementById("queue-dashboard");
  const STATUSES = ["pending", "processing", "completed", "failed", "cancelled", "retrying"];
  const SVG = "http://www.w3.org/2000/svg";
  //: Latency (seconds) from which a queue's latency is highlighted.
  const SLOW_SECONDS = 60;
  //: Heartbeat age (seconds) from which a worker is highlighted as stale.
  const STALE_SECONDS = 30;

  function listUrl(base, params) {
    return base + "?" + new URLSearchParams(params).toString();
  }

  function cell(row, text, field, options = {}) {
    const td = row.insertCell();
    if (options.href) {
      const link = document.createElement("a");
      link.href = options.href;
      link.textContent = text;
      td.appendChild(link);
    } else {
      td.textContent = text;
    }
    if (field) td.dataset.field = field;
    if (options.numeric) td.classList.add("num");
    if (options.title) td.title = options.title;
    return td;
  }

  function fillTable(id, items, fill) {
    const body = document.querySelector(id + " tbody");
    body.replaceChildren();
    for (const item of items) fill(body.insertRow(), item);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Number(seconds);
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
    const minutes = Math.floor(s / 60);
    if (minutes < 60) return minutes + " min " + String(Math.floor(s % 60)).padStart(2, "0") + " s";
    return Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
  }

  // Where each count of a queue row leads: the admin list of those jobs.
  function countLinks(name) {
    const jobs = (status) => listUrl(root.dataset.jobsUrl, {queue: name, status: status});
    const links = {
      depth: jobs("pending"),
      in_flight: jobs("processing"),
      delayed: jobs("delayed"),
      dead_letters: listUrl(root.dataset.failuresUrl, {queue: name}),
    };
    for (const status of STATUSES) links[status] = jobs(status);
    return links;
  }

  function queueRow(row, queue) {
    const links = countLinks(queue.name);
    row.dataset.queue = queue.name;
    cell(row, queue.name, "name");
    const workers = cell(row, queue.workers, "workers", {numeric: true});
    if (queue.workers === 0) workers.classList.add("unserved");
    const latency = cell(row, duration(queue.latency_seconds), "latency", {
      numeric: true, title: "oldest job ready to run has waited " + queue.latency_seconds + " s",
    });
    if (queue.latency_seconds >= SLOW_SECONDS) latency.classList.add("slow");
    cell(row, queue.throughput_per_minute, "throughput", {numeric: true});
    for (const field of ["depth", "in_flight", "delayed", "dead_letters"]) {
      cell(row, queue[field], field, {numeric: true, href: links[field]});
    }
    for (const status of STATUSES) {
      cell(row, queue.counts[status], status, {numeric: true, href: links[status]});
    }
  }

  function workerRow(row, worker) {
    row.dataset.worker = worker.worker_id;
    cell(row, worker.worker_id, "worker_id");
    cell(row, worker.host ?? "", "host");
    cell(row, worker.pid ?? "", "pid", {numeric: true});
    cell(row, (worker.queues || []).join(", "), "queues");
    cell(row, (worker.active_jobs ?? "") + " / " + (worker.max_concurrent ?? "?"), "slots", {numeric: true});
    cell(row, worker.jobs_processed ?? "", "processed", {numeric: true});
    cell(row, worker.jobs_failed ?? "", "failed", {numeric: true});
    cell(row, worker.jobs_retried ?? "", "retried", {numeric: true});
    cell(row, duration(worker.uptime_seconds), "uptime", {numeric: true});
    const age = cell(row, duration(worker.heartbeat_age_seconds), "heartbeat", {numeric: true});
    if (worker.heartbeat_age_seconds > STALE_SECONDS) age.classList.add("stale");
  }

  function drawWarnings(queues) {
    const list = document.getElementById("dash-warnings");
    list.replaceChildren();
    for (const queue of queues.filter((q) => q.workers === 0)) {
      const waiting = queue.depth + queue.delayed;
      const item = document.createElement("li");
      item.className = "warning";
      item.dataset.queue = queue.name;
      item.textContent = "No live worker serves queue \u201c" + queue.name + "\u201d" +
        (waiting ? ": " + waiting + " job(s) wait for one." : ".") +
        " Start one: manage.py queue_worker --queues " + queue.name;
      list.appendChild(item);
    }
    list.hidden = !list.children.length;
  }

  function svg(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Stacked bars of processed (below) and failed (above) jobs per minute.
  function drawChart(box, chart) {
    const [, , width, height] = box.getAttribute("viewBox").split(" ").map(Number);
    const [left, bottom, top] = [40, 20, 10];
    const n = chart.minutes.length || 1;
    const max = Math.max(1, ...chart.processed.map((p, i) => p + chart.failed[i]));
    const slot = (width - left) / n;
    const scale = (height - bottom - top) / max;
    box.replaceChildren(
      svg("line", {x1: left, y1: height - bottom, x2: width, y2: height - bottom}),
      svg("text", {x: 0, y: top + 8}, String(max)),
      svg("text", {x: 0, y: height - bottom}, "0"),
      svg("text", {x: left, y: height - 4}, "-" + n + " min"),
      svg("text", {x: width - 30, y: height - 4}, "now"),
    );
    chart.minutes.forEach((minute, i) => {
      const x = left + i * slot + 1;
      const done = chart.processed[i] * scale;
      const failed = chart.failed[i] * scale;
      const when = new Date(minute * 1000).toLocaleTimeString();
      const title = when + ": " + chart.processed[i] + " processed, " + chart.failed[i] + " failed";
      for (const [cls, y, h] of [["processed", height - bottom - done, done],
                                 ["failed", height - bottom - done - failed, failed]]) {
        if (h <= 0) continue;
        const bar = svg("rect", {class: cls, x: x, y: y, width: Math.max(1, slot - 2), height: h});
        bar.appendChild(svg("title", {}, title));
        box.appendChild(bar);
      }
    });
  }

  const sum = (values) => values.reduce((a, b) => a + b, 0);

  function drawQueueCharts(queues) {
    const grid = document.getElementById("dash-queue-charts");
    grid.replaceChildren();
    for (const queue of queues) {
      const box = document.createElement("div");
      box.className = "queue-chart";
      box.dataset.queue = queue.name;
      const title = document.createElement("h3");
      title.textContent = queue.name;
      const chart = svg("svg", {class: "dash-chart", viewBox: "0 0 480 90", role: "img",
                                "aria-label": "Jobs per minute of " + queue.name});
      const totals = document.createElement("p");
      totals.className = "help";
      totals.textContent = sum(queue.chart.processed) + " processed, " +
        sum(queue.chart.failed) + " failed";
      box.append(title, chart, totals);
      grid.appendChild(box);
      drawChart(chart, queue.chart);
    }
  }

  function draw(data) {
    drawWarnings(data.queues);
    fillTable("#dash-queues", data.queues, queueRow);
    fillTable("#dash-workers", data.workers, workerRow);
    document.getElementById("dash-worker-count").textContent = data.workers.length;
    drawChart(document.getElementById("dash-chart"), data.chart);
    document.getElementById("dash-processed-total").textContent = sum(data.chart.processed);
    document.getElementById("dash-failed-total").textContent = sum(data.chart.failed);
    drawQueueCharts(data.queues);
    document.getElementById("dash-ledger").textContent = data.ledger_backlog;
    document.getElementById("dash-updated").textContent =
      new Date(data.generated_at).toLocaleTimeString();
    root.dataset.generatedAt = data.generated_at;
  }

  function showError(message) {
    const error = document.getElementById("dash-error");
    error.textContent = message;
    error.hidden = !message;
  }

  async function refresh() {
    try {
      const response = await fetch(root.dataset.url, {
        headers: {"Accept": "application/json"}, credentials: "same-origin", cache: "no-store",
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.detail || ("HTTP " + response.status));
      draw(data);
      showError("");
    } catch (error) {
      showError(String(error.message || error));
    } finally {
      setTimeout(refresh, Number(root.dataset.refresh) * 1000);
    }
  }

  const initial = JSON.parse(document.getElementById("dash-initial").textContent);
  if (initial) draw(initial);
  setTimeout(refresh, Number(root.dataset.refresh) * 1000);
})();
