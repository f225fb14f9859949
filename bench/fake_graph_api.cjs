#!/usr/bin/env node
// Fake Instagram Graph API for the anchor benchmarks (reference harness, not product code).
// Copied unchanged (apart from this line) from the BullMQ anchor harness (shared/anchors/bullmq), whose README
// offers it to Instabot's benchmark as the Graph API stand-in.
//
//   node fake_graph_api.js --port 8100 --latency-ms 100 [--host 127.0.0.1]
//
// POST /v21.0/<id>/messages  -> {"recipient_id": "...", "message_id": "m_..."}
// POST /v21.0/<id>/replies   -> {"id": "...", "recipient_id": "...", "message_id": "m_..."}
//   each answered after --latency-ms (a timer, no CPU spent while waiting), so it
//   can hold thousands of concurrent keep-alive connections on one core.
// GET  /stats                -> request counters, connection counters, CPU seconds used
// POST /stats/reset          -> zero the counters (CPU counters are left running)
// Anything else              -> 404.
//
// Node's http module is used (not aiohttp) on purpose: the fake server shares the
// machine's 2 cores with the system under test, so its per-request CPU cost is
// kept as small as possible. /stats reports how much CPU it actually used.
'use strict';
const http = require('http');

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const PORT = parseInt(arg('--port', '8100'), 10);
const HOST = arg('--host', '127.0.0.1');
const LATENCY_MS = parseFloat(arg('--latency-ms', '100'));

const PATH_RE = /^\/v\d+\.\d+\/([^/?]+)\/(messages|replies)(?:\?.*)?$/;

let counters;
function resetCounters() {
  counters = { requests: 0, messages: 0, replies: 0, not_found: 0, bad_json: 0,
               inflight: 0, max_inflight: 0, since: Date.now() };
}
resetCounters();
let openConns = 0, maxOpenConns = 0, totalConns = 0;
let seq = 0;
const cpuStart = process.cpuUsage();

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = req.url;
  if (req.method === 'GET' && url.startsWith('/stats')) {
    const cpu = process.cpuUsage(cpuStart);
    return send(res, 200, { ...counters, latency_ms: LATENCY_MS, open_connections: openConns,
      max_open_connections: maxOpenConns, total_connections: totalConns,
      cpu_user_s: cpu.user / 1e6, cpu_system_s: cpu.system / 1e6, pid: process.pid });
  }
  if (req.method === 'POST' && url.startsWith('/stats/reset')) {
    resetCounters(); maxOpenConns = openConns; totalConns = 0;
    req.resume();
    return send(res, 200, { ok: true });
  }
  const m = req.method === 'POST' ? PATH_RE.exec(url) : null;
  if (!m) {
    counters.not_found++;
    req.resume();
    return send(res, 404, { error: { message: 'Unknown path', type: 'GraphMethodException', code: 100 } });
  }
  counters.requests++;
  counters[m[2]]++;
  counters.inflight++;
  if (counters.inflight > counters.max_inflight) counters.max_inflight = counters.inflight;
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let recipient = m[1];
    if (chunks.length) {
      try {
        const b = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (b && b.recipient && b.recipient.id) recipient = String(b.recipient.id);
      } catch (e) { counters.bad_json++; }
    }
    const reply = () => {
      counters.inflight--;
      const mid = 'm_' + (++seq).toString(36) + '_' + PORT;
      const obj = m[2] === 'replies' ? { id: mid, recipient_id: recipient, message_id: mid }
                                     : { recipient_id: recipient, message_id: mid };
      send(res, 200, obj);
    };
    if (LATENCY_MS > 0) setTimeout(reply, LATENCY_MS); else reply();
  });
});

server.keepAliveTimeout = 120000;   // keep idle keep-alive sockets open between benchmark phases
server.headersTimeout = 125000;
server.requestTimeout = 0;
server.on('connection', (sock) => {
  openConns++; totalConns++;
  if (openConns > maxOpenConns) maxOpenConns = openConns;
  sock.setNoDelay(true);
  sock.on('close', () => { openConns--; });
});
server.listen({ port: PORT, host: HOST, backlog: 8192 }, () => {
  console.log(`fake_graph_api listening on http://${HOST}:${PORT} latency=${LATENCY_MS}ms pid=${process.pid}`);
});
function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
