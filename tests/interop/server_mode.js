// node-smpp plays the operator's system binding to donagate's server (interop_link_peer --mode
// server). Covers: bad password refused and closed, good bind, bind twice (ESME_RALYBND), a PDU
// before bind, MO in GSM 7-bit / Latin-1 / UCS-2 and a concatenated MO (sar TLVs), enquire_link
// both ways, replies as submit_sm (throttled with ESME_RMSGQFUL once, then accepted) with a
// delivery receipt, peer unbind, and our graceful unbind on stop.
'use strict';
const smpp = require('smpp');
const { check, fatal, finish, sleep, waitFor, startProbe, gsm7 } = require('./lib.js');

function connect(port) {
  return new Promise((resolve, reject) => {
    const session = smpp.connect({ host: '127.0.0.1', port }, () => resolve(session));
    session.on('error', (e) => { if (!session.connected) reject(e); });
  });
}
const call = (session, command, fields) =>
  new Promise((resolve) => session[command](fields || {}, resolve));
const closed = (session) => new Promise((resolve) => session.on('close', resolve));

async function main() {
  const probe = startProbe(['--mode', 'server', '--port', '0', '--system-id', 'opb',
    '--password', 'secret', '--enquire-link-interval-ms', '300', '--response-timeout-ms', '2000',
    '--throttle-pause-ms', '300', '--reply', 'Cam on', '--log-level', 'warn']);
  const listening = await waitFor(() => probe.events.find((e) => e.event === 'listening'), 5000, 'listening');
  const port = listening.port;

  // Bad password: refused and disconnected.
  const bad = await connect(port);
  bad.on('error', () => {});
  const badClosed = closed(bad);
  const refused = await call(bad, 'bind_transceiver', { system_id: 'opb', password: 'nope' });
  check(refused.command_status === smpp.ESME_RINVPASWD, 'wrong password refused with ESME_RINVPASWD');
  await badClosed;
  check(true, 'refused connection closed by the server');

  const esme = await connect(port);
  esme.on('error', () => {});
  // A PDU before bind.
  const early = await call(esme, 'deliver_sm', { source_addr: '84912345678', destination_addr: '1407', short_message: 'CV' });
  check(early.command_status === smpp.ESME_RINVBNDSTS, 'deliver_sm before bind gets ESME_RINVBNDSTS');
  const bound = await call(esme, 'bind_transceiver', { system_id: 'opb', password: 'secret' });
  check(bound.command_status === 0, 'good bind accepted');
  const twice = await call(esme, 'bind_transceiver', { system_id: 'opb', password: 'secret' });
  check(twice.command_status === smpp.ESME_RALYBND, 'second bind gets ESME_RALYBND');
  await waitFor(() => probe.states().includes('bound'), 3000, 'bound state');

  // Replies come back to us as submit_sm: throttle the first one, accept the rest with a receipt.
  let submits = 0;
  const receiptAcks = [];
  esme.on('submit_sm', (pdu) => {
    submits++;
    if (submits === 1) {
      esme.send(pdu.response({ command_status: smpp.ESME_RMSGQFUL }));
      return;
    }
    const id = 'R' + submits;
    esme.send(pdu.response({ message_id: id }));
    esme.deliver_sm({ source_addr: pdu.destination_addr, destination_addr: pdu.source_addr,
      esm_class: 0x04, data_coding: 0,
      short_message: Buffer.from('id:' + id + ' sub:001 dlvrd:001 submit date:2611281200 done date:2611281201 stat:DELIVRD err:000 text:'),
      receipted_message_id: id, message_state: 2 }, (r) => receiptAcks.push(r.command_status));
  });
  let enquireFromServer = 0;
  esme.on('enquire_link', (pdu) => { enquireFromServer++; esme.send(pdu.response()); });

  const gsmText = 'CV 1 @£$ [x]';
  const latinText = 'Ça va, CV 2';
  const ucsText = 'Ủng hộ 3';
  const r1 = await call(esme, 'deliver_sm', { source_addr: '84911111111', destination_addr: '1407', data_coding: 0, short_message: gsm7(gsmText) });
  const r2 = await call(esme, 'deliver_sm', { source_addr: '84922222222', destination_addr: '1407', data_coding: 3, short_message: Buffer.from(latinText, 'latin1') });
  const r3 = await call(esme, 'deliver_sm', { source_addr: '84933333333', destination_addr: '1407', data_coding: 8, short_message: Buffer.from(ucsText, 'utf16le').swap16() });
  check([r1, r2, r3].every((r) => r.command_status === 0), 'three MOs acknowledged');
  // The probe prints each MO before acknowledging it; its stdout may reach us after the ack.
  await waitFor(() => probe.mos().length >= 3, 3000, 'three printed MOs');
  const texts = probe.mos().map((m) => m.text);
  check(texts.includes(gsmText), 'GSM 7-bit decoded: ' + JSON.stringify(texts[0]));
  check(texts.includes(latinText), 'Latin-1 decoded: ' + JSON.stringify(texts[1]));
  check(texts.includes(ucsText), 'UCS-2 decoded: ' + JSON.stringify(texts[2]));

  // Concatenated MO with sar_* TLVs.
  for (const [seq, text] of [[1, 'CV long '], [2, 'message']]) {
    const r = await call(esme, 'deliver_sm', { source_addr: '84944444444', destination_addr: '1407',
      data_coding: 0, short_message: gsm7(text), sar_msg_ref_num: 777, sar_total_segments: 2,
      sar_segment_seqnum: seq });
    check(r.command_status === 0, 'concatenated part ' + seq + ' acknowledged');
  }
  await waitFor(() => probe.mos().filter((m) => m.concat && m.concat.ref === 777).length >= 2, 3000, 'printed parts');
  const parts = probe.mos().filter((m) => m.concat && m.concat.ref === 777);
  check(parts.length === 2 && parts.map((p) => p.text).join('') === 'CV long message', 'sar parts delivered in order with their reference');

  // enquire_link both ways.
  const e = await call(esme, 'enquire_link');
  check(e.command_status === 0, 'server answers enquire_link');
  await waitFor(() => enquireFromServer > 0, 3000, 'enquire_link from the server');
  check(true, 'server sends enquire_link');

  // Replies: the first throttled (ESME_RMSGQFUL) is retried after the pause.
  await waitFor(() => probe.submitResults().length >= 5, 8000, 'five submit results');
  const results = probe.submitResults();
  check(results.every((r) => r.outcome === 'ok'), 'every reply accepted: ' + JSON.stringify(results.map((r) => r.outcome)));
  check(results.some((r) => r.attempts === 2), 'the throttled reply was retried');
  await waitFor(() => receiptAcks.length >= 5, 5000, 'receipt acks');
  check(receiptAcks.every((s) => s === 0), 'receipts acknowledged');
  await waitFor(() => probe.mos().filter((m) => m.receipt && m.receipt_stat === 'DELIVRD').length >= 5, 3000, 'parsed receipts');
  check(true, 'receipts parsed as DELIVRD');

  // Peer unbind.
  const esmeClosed = closed(esme);
  const u = await call(esme, 'unbind');
  check(u.command_status === 0, 'server answers unbind');
  await esmeClosed;
  check(true, 'server closes after unbind');

  // Graceful stop unbinds a bound peer.
  const last = await connect(port);
  last.on('error', () => {});
  check((await call(last, 'bind_transceiver', { system_id: 'opb', password: 'secret' })).command_status === 0, 'rebind accepted');
  let unbindFromServer = false;
  last.on('unbind', (pdu) => { unbindFromServer = true; last.send(pdu.response()); });
  await sleep(200);  // let the server mark the session bound
  probe.send('stop');
  await waitFor(() => probe.exited, 8000, 'probe exit');
  check(unbindFromServer, 'graceful stop sends unbind to the bound operator');
  finish();
}

main().catch((e) => fatal(e.stack || String(e)));
