#!/usr/bin/env node
// Test OCS for donagate's Diameter Ro backend. Its messages are encoded and decoded by
// node-diameter (npm "diameter"), an implementation independent of donagate's own codec, so a
// wrong AVP code, type, grouping or padding on our side shows up as a decode error or a wrong
// debit here.
//
// One OCS with shared balances and one debit log, reachable through one or more listeners
// (--listen, repeatable): a pair of listeners is the usual "primary and secondary peer" of one
// charging system, so failover between them must still charge exactly once.
//
// Behaviour:
//  - CER → CEA, DWR → DWA, DPR → DPA. CCR EVENT_REQUEST:
//    DIRECT_DEBITING: Subscription-Id END_USER_E164 → balance; CC-Money/Unit-Value/Value-Digits
//      (Currency-Code must be 704) → debit. 2001 charged; 4012 balance too low; rules
//      (--rule MSISDN=CODE) force 5030/4010/... for a subscriber.
//    REFUND_ACCOUNT: credits back the debit named by the key AVP (default CC-Correlation-Id).
//  - Duplicate detection: a CCR whose Session-Id was seen before is answered from the stored
//    result and never debited again (counted as duplicates, T-flagged ones separately).
//  - Faults (also at run time via the admin API): latency (CCA and, apart, DWA), answers dropped after the debit
//    (drop_rate), DIAMETER_TOO_BUSY (too_busy_rate, or too_busy_burst = next N CCRs, unprocessed),
//    a listener that goes silent (answers nothing, DWR included) or closes.
//  - TLS (--tls-cert/--tls-key): every listener speaks TLS/TCP (RFC 6733 §2.1, handshake before
//    CER); --tls-client-ca F also requires a client certificate signed by F (mutual TLS). TLS
//    handshakes completed and refused are counted (tls_handshakes, tls_refused).
//  - Debit log: CSV key,msisdn,amount,at (the format tests/faults/lib.sh reads) written on SIGTERM
//    and on GET /debits?format=csv; JSON with GET /debits.
//
// Framing: node-diameter 0.7.0's connection object decodes only one message per TCP chunk
// (pipelined requests would wait for the next chunk), so this file frames the stream itself and
// uses node-diameter's codec (lib/diameter-codec) for every message.
'use strict';

const net = require('net');
const tls = require('tls');
const http = require('http');
const fs = require('fs');
const dictionary = require('diameter/lib/diameter-dictionary');
const codec = require('diameter/lib/diameter-codec');

// node-diameter looks every AVP up with a linear search of its 2,000-entry dictionary (about
// 1.5 ms per CCR to decode and as much to encode); memoise the lookups so the simulator is not
// the bottleneck of a throughput run. The answers are node-diameter's own, only cached.
for (const name of ['getApplicationById', 'getApplicationByName', 'getCommandByCode', 'getCommandByName',
                    'getAvpByCode', 'getAvpByCodeAndVendorId', 'getAvpByName']) {
  const original = dictionary[name];
  const cache = new Map();
  dictionary[name] = (...args) => {
    const k = args.join('\u0000');
    if (!cache.has(k)) cache.set(k, original(...args));
    return cache.get(k);
  };
}

function parseArgs(argv) {
  const o = {
    listen: [], admin: null, originHost: 'ocs.test', originRealm: 'test', defaultBalance: 1000000,
    latencyMs: 0, dwaLatencyMs: 0, dropRate: 0, tooBusyRate: 0, tooBusyBurst: 0, rules: {}, balances: {},
    debitLog: null, keyAvp: 'CC-Correlation-Id', ccfh: null, seed: 1,
    tlsCert: null, tlsKey: null, tlsClientCa: null,
  };
  for (let i = 2; i < argv.length; ++i) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(a + ' needs a value');
      return argv[++i];
    };
    switch (a) {
      case '--listen': o.listen.push(v()); break;
      case '--admin': o.admin = v(); break;
      case '--origin-host': o.originHost = v(); break;
      case '--origin-realm': o.originRealm = v(); break;
      case '--default-balance': o.defaultBalance = Number(v()); break;
      case '--balance': { const [m, b] = v().split('='); o.balances[m] = Number(b); break; }
      case '--rule': { const [m, c] = v().split('='); o.rules[m] = Number(c); break; }
      case '--latency-ms': o.latencyMs = Number(v()); break;
      case '--drop-rate': o.dropRate = Number(v()); break;
      case '--too-busy-rate': o.tooBusyRate = Number(v()); break;
      case '--debit-log': o.debitLog = v(); break;
      case '--key-avp': o.keyAvp = v(); break;
      case '--ccfh': o.ccfh = v(); break;
      case '--seed': o.seed = Number(v()); break;
      case '--tls-cert': o.tlsCert = v(); break;
      case '--tls-key': o.tlsKey = v(); break;
      case '--tls-client-ca': o.tlsClientCa = v(); break;
      default: throw new Error('unknown option ' + a);
    }
  }
  if (o.listen.length === 0) throw new Error('--listen host:port is required');
  if (!o.tlsCert !== !o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  if (o.tlsClientCa && !o.tlsCert) throw new Error('--tls-client-ca needs --tls-cert');
  return o;
}

const opts = parseArgs(process.argv);

// Deterministic pseudo-random numbers (mulberry32), so a failing run can be replayed.
let rngState = opts.seed >>> 0;
function random() {
  rngState = (rngState + 0x6D2B79F5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const state = {
  balances: new Map(Object.entries(opts.balances)),
  sessions: new Map(),   // Session-Id -> { resultCode, grantedVnd }
  debits: [],            // { key, msisdn, amount, at, session, refunded }
  debitsByKey: new Map(),
  stats: { ccr: 0, charged: 0, duplicates: 0, t_flagged: 0, t_flagged_duplicates: 0, dropped: 0, too_busy: 0,
           refunds: 0, dwr: 0, cer: 0, decode_errors: 0, tls_handshakes: 0, tls_refused: 0, by_result: {} },
  listeners: [],         // { spec, server, sockets:Set, mode: 'up'|'silent'|'closed' }
};

function find(body, name) {
  const avp = body.find((a) => a[0] === name);
  return avp === undefined ? undefined : avp[1];
}

function balanceOf(msisdn) {
  if (!state.balances.has(msisdn)) state.balances.set(msisdn, opts.defaultBalance);
  return state.balances.get(msisdn);
}

function numberOf(v) {
  if (v === undefined || v === null) return NaN;
  if (typeof v === 'number') return v;
  if (typeof v.toNumber === 'function') return v.toNumber();
  return Number(v);
}

function baseAnswer(message, resultCode) {
  const r = codec.constructResponse(message);
  if (resultCode >= 3000 && resultCode < 4000) r.header.flags.error = true;
  r.body.push(['Result-Code', resultCode]);
  r.body.push(['Origin-Host', opts.originHost]);
  r.body.push(['Origin-Realm', opts.originRealm]);
  return r;
}

function countResult(rc) {
  state.stats.by_result[rc] = (state.stats.by_result[rc] || 0) + 1;
}

function handleCreditControl(message) {
  const body = message.body;
  const t = message.header.flags.potentiallyRetransmitted;
  ++state.stats.ccr;
  if (t) ++state.stats.t_flagged;
  const sessionId = find(body, 'Session-Id');
  const answer = (rc, granted) => {
    const r = baseAnswer(message, rc);
    r.body.push(['Auth-Application-Id', 'Diameter Credit Control']);
    r.body.push(['CC-Request-Type', 'EVENT_REQUEST']);
    r.body.push(['CC-Request-Number', 0]);
    if (opts.ccfh) r.body.push(['Credit-Control-Failure-Handling', opts.ccfh]);
    if (granted) {
      r.body.push(['Granted-Service-Unit', [['CC-Money', [['Unit-Value', [['Value-Digits', granted]]], ['Currency-Code', 704]]]]]);
    }
    countResult(rc);
    return r;
  };
  const previous = state.sessions.get(sessionId);
  if (previous) {
    ++state.stats.duplicates;
    if (t) ++state.stats.t_flagged_duplicates;
    return { answer: answer(previous.resultCode, previous.grantedVnd), processed: false };
  }
  if (opts.tooBusyBurst > 0 || (opts.tooBusyRate > 0 && random() < opts.tooBusyRate)) {
    if (opts.tooBusyBurst > 0) --opts.tooBusyBurst;
    ++state.stats.too_busy;
    return { answer: answer(3004), processed: false };   // refused unprocessed: not remembered
  }
  const action = find(body, 'Requested-Action');
  const key = find(body, opts.keyAvp);
  const sub = find(body, 'Subscription-Id');
  const msisdn = sub ? find(sub, 'Subscription-Id-Data') : undefined;
  const rsu = find(body, 'Requested-Service-Unit');
  const money = rsu ? find(rsu, 'CC-Money') : undefined;
  const unitValue = money ? find(money, 'Unit-Value') : undefined;
  const amount = unitValue ? numberOf(find(unitValue, 'Value-Digits')) : NaN;
  const exponent = unitValue ? numberOf(find(unitValue, 'Exponent') ?? 0) : 0;
  const currency = money ? find(money, 'Currency-Code') : undefined;
  let rc;
  let granted;
  if (find(body, 'CC-Request-Type') !== 'EVENT_REQUEST' || key === undefined || !(amount > 0) || exponent !== 0 ||
      currency !== 704) {
    rc = 5005;  // DIAMETER_MISSING_AVP: the request is not what an event debit must carry
  } else if (action === 'REFUND_ACCOUNT') {
    const d = state.debitsByKey.get(String(key));
    if (!d) {
      rc = 5030;
    } else if (amount > d.amount) {
      rc = 5031;
    } else {
      if (!d.refunded) {
        d.refunded = amount;
        state.balances.set(d.msisdn, balanceOf(d.msisdn) + amount);
        ++state.stats.refunds;
      }
      rc = 2001;
    }
  } else if (action !== 'DIRECT_DEBITING' || msisdn === undefined) {
    rc = 5005;
  } else if (opts.rules[msisdn] !== undefined) {
    rc = opts.rules[msisdn];
  } else if (balanceOf(msisdn) < amount) {
    rc = 4012;
  } else if (state.debitsByKey.has(String(key))) {
    // Same key under another Session-Id: the key names one charge; never debit it twice.
    rc = 2001;
    granted = amount;
  } else {
    state.balances.set(msisdn, balanceOf(msisdn) - amount);
    const d = { key: String(key), msisdn, amount, at: new Date().toISOString(), session: sessionId, refunded: 0 };
    state.debits.push(d);
    state.debitsByKey.set(d.key, d);
    ++state.stats.charged;
    rc = 2001;
    granted = amount;
  }
  state.sessions.set(sessionId, { resultCode: rc, grantedVnd: granted });
  return { answer: answer(rc, granted), processed: true };
}

function handle(listener, socket, message) {
  const cmd = message.command;
  let reply = null;
  let drop = false;
  if (cmd === 'Capabilities-Exchange') {
    ++state.stats.cer;
    reply = baseAnswer(message, 2001);
    reply.body.push(['Host-IP-Address', '127.0.0.1']);
    reply.body.push(['Vendor-Id', 0]);
    reply.body.push(['Product-Name', 'donagate-ocs-sim (node-diameter)']);
    reply.body.push(['Auth-Application-Id', 'Diameter Credit Control']);
  } else if (cmd === 'Device-Watchdog') {
    ++state.stats.dwr;
    reply = baseAnswer(message, 2001);
  } else if (cmd === 'Disconnect-Peer') {
    reply = baseAnswer(message, 2001);
    setTimeout(() => socket.end(), 10);
  } else if (cmd === 'Credit-Control') {
    const r = handleCreditControl(message);
    reply = r.answer;
    if (r.processed && opts.dropRate > 0 && random() < opts.dropRate) {
      drop = true;
      ++state.stats.dropped;
    }
  } else {
    reply = baseAnswer(message, 3001);
  }
  if (drop || listener.mode !== 'up') return;
  const bytes = codec.encodeMessage(reply);
  const send = () => { if (!socket.destroyed && listener.mode === 'up') socket.write(bytes); };
  const delay = cmd === 'Credit-Control' ? opts.latencyMs : cmd === 'Device-Watchdog' ? opts.dwaLatencyMs : 0;
  if (delay > 0) setTimeout(send, delay); else send();
}

function startListener(spec) {
  const [host, port] = spec.split(':');
  const listener = { spec, sockets: new Set(), mode: 'up', server: null };
  const onConnection = (socket) => {
    if (listener.mode === 'closed') return socket.destroy();
    listener.sockets.add(socket);
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    socket.on('data', (data) => {
      buffer = buffer.length ? Buffer.concat([buffer, data]) : data;
      while (buffer.length >= 20) {
        const length = buffer.readUIntBE(1, 3);
        if (length < 20) { socket.destroy(); return; }
        if (buffer.length < length) break;
        const one = buffer.subarray(0, length);
        buffer = buffer.subarray(length);
        if (listener.mode === 'silent') continue;
        let message;
        try {
          message = codec.decodeMessage(Buffer.from(one));
        } catch (err) {
          ++state.stats.decode_errors;
          console.error('ocs_sim: cannot decode a message: ' + err.message);
          continue;
        }
        handle(listener, socket, message);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => listener.sockets.delete(socket));
  };
  if (opts.tlsCert) {
    const tlsOptions = { cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) };
    if (opts.tlsClientCa) Object.assign(tlsOptions, { ca: fs.readFileSync(opts.tlsClientCa), requestCert: true, rejectUnauthorized: true });
    listener.server = tls.createServer(tlsOptions, (socket) => { ++state.stats.tls_handshakes; onConnection(socket); });
    listener.server.on('tlsClientError', () => { ++state.stats.tls_refused; });
  } else {
    listener.server = net.createServer(onConnection);
  }
  listener.server.listen(Number(port), host, () => console.log('ocs_sim listening on ' + spec));
  state.listeners.push(listener);
}

function setListenerMode(index, mode) {
  const l = state.listeners[index];
  if (!l) return false;
  l.mode = mode;
  if (mode === 'closed') for (const s of l.sockets) s.destroy();
  return true;
}

function debitsCsv() {
  let out = 'key,msisdn,amount,at\n';
  for (const d of state.debits) out += `${d.key},${d.msisdn},${d.amount - (d.refunded || 0)},${d.at}\n`;
  return out;
}

function writeDebitLog() {
  if (opts.debitLog) fs.writeFileSync(opts.debitLog, debitsCsv());
}

function startAdmin(spec) {
  const [host, port] = spec.split(':');
  http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const reply = (code, obj, type = 'application/json') => {
        res.writeHead(code, { 'Content-Type': type });
        res.end(typeof obj === 'string' ? obj : JSON.stringify(obj));
      };
      const url = new URL(req.url, 'http://x');
      if (req.method === 'GET' && url.pathname === '/stats') {
        const debited = state.debits.reduce((s, d) => s + d.amount - (d.refunded || 0), 0);
        return reply(200, { ...state.stats, debits: state.debits.length, debited_vnd: debited,
                            listeners: state.listeners.map((l) => ({ listen: l.spec, mode: l.mode, connections: l.sockets.size })) });
      }
      if (req.method === 'GET' && url.pathname === '/debits') {
        if (url.searchParams.get('format') === 'csv') return reply(200, debitsCsv(), 'text/csv');
        return reply(200, state.debits);
      }
      if (req.method === 'POST' && url.pathname === '/config') {
        let c;
        try { c = JSON.parse(body || '{}'); } catch (e) { return reply(400, { error: 'bad JSON' }); }
        if (c.latency_ms !== undefined) opts.latencyMs = Number(c.latency_ms);
        if (c.dwa_latency_ms !== undefined) opts.dwaLatencyMs = Number(c.dwa_latency_ms);
        if (c.drop_rate !== undefined) opts.dropRate = Number(c.drop_rate);
        if (c.too_busy_rate !== undefined) opts.tooBusyRate = Number(c.too_busy_rate);
        if (c.too_busy_burst !== undefined) opts.tooBusyBurst = Number(c.too_busy_burst);
        if (c.ccfh !== undefined) opts.ccfh = c.ccfh;
        if (c.rules) Object.assign(opts.rules, c.rules);
        if (c.balances) for (const [m, b] of Object.entries(c.balances)) state.balances.set(m, Number(b));
        if (c.listener !== undefined && !setListenerMode(Number(c.listener), c.mode || 'up')) {
          return reply(404, { error: 'no listener ' + c.listener });
        }
        return reply(200, { ok: true });
      }
      return reply(404, { error: 'not found' });
    });
  }).listen(Number(port), host, () => console.log('ocs_sim admin on ' + spec));
}

for (const spec of opts.listen) startListener(spec);
if (opts.admin) startAdmin(opts.admin);
const stop = () => {
  writeDebitLog();
  console.log('ocs_sim stats ' + JSON.stringify(state.stats));
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
