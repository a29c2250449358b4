// node-smpp plays the operator's SMSC; donagate's client link (interop_link_peer --mode client)
// binds to it. Covers: bad then good password, MO in GSM 7-bit / Latin-1 / UCS-2, a
// concatenated MO, enquire_link both ways, a reply submit_sm throttled once then accepted and
// followed by a delivery receipt, a connection dropped mid-stream (nothing acknowledged lost,
// unacknowledged redelivered), peer unbind, and our graceful unbind on stop.
'use strict';
const smpp = require('smpp');
const { check, fatal, finish, sleep, waitFor, startProbe, gsm7 } = require('./lib.js');

const sessions = [];
let bindCount = 0;
let bindTimes = [];
let enquireFromLink = 0;
let submits = [];
let unbindFromLink = 0;
const acked = new Map();  // text -> command_status of deliver_sm_resp

const server = smpp.createServer((session) => {
  sessions.push(session);
  session.on('error', () => {});
  session.on('bind_transceiver', (pdu) => {
    bindCount++;
    bindTimes.push(Date.now());
    if (bindCount === 1) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      session.close();
      return;
    }
    check(pdu.system_id === 'opa' && pdu.password === 'secret', 'bind carries system_id and password');
    session.send(pdu.response({ system_id: 'nodesmsc' }));
    session.bound = true;
  });
  session.on('enquire_link', (pdu) => { enquireFromLink++; session.send(pdu.response()); });
  session.on('unbind', (pdu) => { unbindFromLink++; session.send(pdu.response()); session.close(); });
  session.on('submit_sm', (pdu) => {
    submits.push(pdu);
    if (submits.length === 1) {
      session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      return;
    }
    const id = 'ABC' + submits.length;
    session.send(pdu.response({ message_id: id }));
    setTimeout(() => {
      session.deliver_sm({
        source_addr: pdu.destination_addr, destination_addr: pdu.source_addr, esm_class: 0x04,
        data_coding: 0,
        short_message: Buffer.from('id:' + id + ' sub:001 dlvrd:001 submit date:2611281200 ' +
                                   'done date:2611281201 stat:DELIVRD err:000 text:Cam on'),
        receipted_message_id: id, message_state: 2,
      }, (resp) => { acked.set('receipt ' + id, resp.command_status); });
    }, 100);
  });
});

function deliver(session, fields, key) {
  return new Promise((resolve) => {
    const ok = session.deliver_sm(Object.assign({ source_addr: '84912345678',
      destination_addr: '1407', esm_class: 0 }, fields), (resp) => {
      acked.set(key, resp.command_status);
      resolve(resp.command_status);
    });
    if (!ok) resolve(-1);
  });
}

async function main() {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const probe = startProbe(['--mode', 'client', '--port', String(port), '--system-id', 'opa',
    '--password', 'secret', '--backoff-min-ms', '100', '--backoff-max-ms', '1500',
    '--enquire-link-interval-ms', '300', '--response-timeout-ms', '2000',
    '--throttle-pause-ms', '300', '--throttle-max-retries', '3', '--reply', 'Cam on Quy khach',
    '--ack-interval-ms', '20', '--log-level', 'warn']);

  // 1. Bad password: refused, retried only after the maximum backoff, then bound.
  await waitFor(() => bindCount >= 2, 8000, 'the second bind');
  check(bindTimes[1] - bindTimes[0] >= 1400,
        'refused bind retried after the max backoff (' + (bindTimes[1] - bindTimes[0]) + ' ms)');
  await waitFor(() => probe.states().includes('bind_refused'), 3000, 'bind_refused state');
  await waitFor(() => probe.states().includes('bound'), 3000, 'bound state');
  let session = sessions[sessions.length - 1];

  // 2. MO text in three codings. Replies (submit_sm) start flowing too.
  const gsmText = 'Hello @£$ {CV} 1 €';
  const latinText = 'Café über CV 2 ñ';
  const ucsText = 'Ủng hộ CV 3 ❤';
  check(await deliver(session, { data_coding: 0, short_message: gsm7(gsmText) }, 'gsm') === 0, 'GSM 7-bit MO acknowledged');
  check(await deliver(session, { data_coding: 3, short_message: Buffer.from(latinText, 'latin1') }, 'latin1') === 0, 'Latin-1 MO acknowledged');
  check(await deliver(session, { data_coding: 8, short_message: Buffer.from(ucsText, 'utf16le').swap16() }, 'ucs2') === 0, 'UCS-2 MO acknowledged');
  // The probe prints each MO before acknowledging it; its stdout may reach us after the ack.
  await waitFor(() => probe.mos().length >= 3, 3000, 'three printed MOs');
  const texts = probe.mos().map((m) => m.text);
  check(texts.includes(gsmText), 'GSM 7-bit decoded: ' + JSON.stringify(texts[0]));
  check(texts.includes(latinText), 'Latin-1 decoded: ' + JSON.stringify(texts[1]));
  check(texts.includes(ucsText), 'UCS-2 decoded: ' + JSON.stringify(texts[2]));

  // 3. Concatenated MO, parts out of order.
  const udh = (seq) => Buffer.from([0x05, 0x00, 0x03, 0x42, 0x02, seq]);
  await deliver(session, { data_coding: 0, esm_class: 0x40, short_message: Buffer.concat([udh(2), gsm7(' two')]) }, 'part2');
  await deliver(session, { data_coding: 0, esm_class: 0x40, short_message: Buffer.concat([udh(1), gsm7('CV part one and')]) }, 'part1');
  await waitFor(() => probe.mos().filter((m) => m.concat && m.concat.ref === 0x42).length >= 2, 3000, 'printed parts');
  const parts = probe.mos().filter((m) => m.concat && m.concat.ref === 0x42);
  check(parts.length === 2 && parts.every((p) => p.concat.total === 2), 'both concatenated parts delivered with their UDH');
  const joined = parts.sort((a, b) => a.concat.seq - b.concat.seq).map((p) => p.text).join('');
  check(joined === 'CV part one and two', 'parts join to the full text: ' + JSON.stringify(joined));

  // 4. enquire_link both ways.
  const enquireResp = await new Promise((resolve) => session.enquire_link({}, resolve));
  check(enquireResp.command_status === 0, 'link answers enquire_link');
  await waitFor(() => enquireFromLink >= 1, 3000, 'an enquire_link from the link');
  check(true, 'link sends enquire_link');

  // 5. Replies: first submit throttled, retried after the pause, then accepted + receipt acked.
  await waitFor(() => probe.submitResults().length >= 1, 5000, 'a submit result');
  const first = probe.submitResults()[0];
  check(first.outcome === 'ok' && first.attempts === 2 && first.message_id === 'ABC2',
        'throttled submit retried then accepted: ' + JSON.stringify(first));
  await waitFor(() => probe.mos().some((m) => m.receipt && m.receipt_id === 'ABC2'), 5000, 'the receipt');
  const receipt = probe.mos().find((m) => m.receipt && m.receipt_id === 'ABC2');
  check(receipt.receipt_stat === 'DELIVRD', 'delivery receipt parsed: stat ' + receipt.receipt_stat);
  check(submits[1].short_message.message === 'Cam on Quy khach', 'reply text reached the SMSC');

  // 6. Drop the connection with deliver_sm in flight; redeliver what was not acknowledged.
  const burst = [];
  for (let i = 0; i < 30; i++) burst.push('burst ' + i);
  for (const text of burst) {
    session.deliver_sm({ source_addr: '8490000' + String(1000 + burst.indexOf(text)), destination_addr: '1407',
      data_coding: 0, short_message: gsm7(text) }, (resp) => acked.set(text, resp.command_status));
  }
  await waitFor(() => burst.filter((t) => acked.has(t)).length >= 5, 5000, 'some burst acks');
  check(burst.some((t) => !acked.has(t)), 'deliver_sm still unacknowledged when the connection drops');
  session.destroy();
  const ackedBeforeDrop = burst.filter((t) => acked.get(t) === 0);
  const bindsBefore = bindCount;
  await waitFor(() => bindCount > bindsBefore && sessions[sessions.length - 1].bound, 8000, 'rebind after drop');
  session = sessions[sessions.length - 1];
  const printedAll = () => { const p = new Set(probe.mos().map((m) => m.text)); return ackedBeforeDrop.every((t) => p.has(t)); };
  await waitFor(printedAll, 3000, 'acknowledged MOs to show in the probe output');
  check(printedAll(),
        'every MO acknowledged before the drop was handed over (' + ackedBeforeDrop.length + ')');
  const unacked = burst.filter((t) => acked.get(t) !== 0);
  for (const text of unacked) {
    await deliver(session, { data_coding: 0, short_message: gsm7(text) }, text);
  }
  check(unacked.length > 0 && burst.every((t) => acked.get(t) === 0), 'after redelivery all 30 burst MOs are acknowledged (' + unacked.length + ' redelivered)');
  const allPrinted = () => { const p = new Set(probe.mos().map((m) => m.text)); return burst.every((t) => p.has(t)); };
  await waitFor(allPrinted, 3000, 'every burst MO in the probe output');
  check(allPrinted(), 'every acknowledged MO reached the handler');

  // 7. Peer unbind: answered, then the link binds again.
  const beforeUnbind = bindCount;
  const unbindResp = await new Promise((resolve) => session.unbind({}, resolve));
  check(unbindResp.command_status === 0, 'link answers our unbind with unbind_resp');
  await waitFor(() => bindCount > beforeUnbind && sessions[sessions.length - 1].bound, 8000, 'rebind after unbind');
  check(true, 'link rebinds after a peer unbind');

  // 8. Graceful stop: the link unbinds.
  const unbindsBefore = unbindFromLink;
  probe.send('stop');
  await waitFor(() => probe.exited, 8000, 'the probe to exit');
  check(unbindFromLink > unbindsBefore, 'graceful stop sends unbind');
  check(probe.events.some((e) => e.event === 'stopped'), 'probe reports a clean stop');
  check(probe.mos().every((m) => m.text_ok), 'every text decoded cleanly');
  server.close();
  finish();
}

main().catch((e) => fatal(e.stack || String(e)));
