// node-smpp plays the operator's SMSC (an SMPP implementation we did not write) and the real
// donagated binds to it; tests/interop/daemon_defects_test.sh checks the database afterwards.
// Sends the two MOs of issue 15's defects, plus a control donation:
//   - esm_class 0x40 (UDHI) with user data 20 43 56 20 31: the UDHL claims 32 octets, 5 follow.
//     Read as GSM 7-bit text those octets are " CV 1"; the daemon must record it undecodable,
//     never charge it, answer at most the help text.
//   - source_addr "0084916000005" (TON 0, the international prefix dialled from Vietnam), "CV 2":
//     a valid donation of 40,000 VND from 84916000005.
//   - "CV 3" from 84916000006: a plain donation, so the test proves charging worked at all.
// Prints one JSON line with the deliver_sm_resp statuses and the submit_sm texts received.
'use strict';
const smpp = require('smpp');

const statuses = {};
const submits = [];
const port = Number(process.argv[2]);
let session = null;

const server = smpp.createServer((s) => {
  s.on('error', () => {});
  s.on('bind_transceiver', (pdu) => {
    s.send(pdu.response({ system_id: 'nodesmsc' }));
    session = s;
  });
  s.on('enquire_link', (pdu) => s.send(pdu.response()));
  s.on('unbind', (pdu) => { s.send(pdu.response()); s.close(); });
  s.on('submit_sm', (pdu) => {
    const text = Buffer.isBuffer(pdu.short_message) ? pdu.short_message.toString('latin1')
      : (pdu.short_message && pdu.short_message.message) || String(pdu.short_message);
    submits.push({ to: pdu.destination_addr, text });
    s.send(pdu.response({ message_id: 'M' + submits.length }));
  });
});

function deliver(key, fields) {
  return new Promise((resolve) => {
    session.deliver_sm(Object.assign({ source_addr_ton: 1, source_addr_npi: 1,
      destination_addr: '1407', esm_class: 0, data_coding: 0 }, fields), (resp) => {
      statuses[key] = resp.command_status;
      resolve();
    });
  });
}

async function main() {
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const deadline = Date.now() + 30000;
  while (!session && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (!session) { console.error('donagated never bound'); process.exit(1); }
  await deliver('bad_udh', { source_addr: '84916000001', esm_class: 0x40,
    short_message: Buffer.from([0x20, 0x43, 0x56, 0x20, 0x31]) });
  await deliver('intl_prefix', { source_addr: '0084916000005', source_addr_ton: 0,
    short_message: Buffer.from('CV 2', 'latin1') });
  await deliver('control', { source_addr: '84916000006', short_message: Buffer.from('CV 3', 'latin1') });
  // Replies come after charging: wait for the two thank-yous (and any help text) a while.
  const until = Date.now() + 15000;
  while (submits.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 500));
  console.log(JSON.stringify({ statuses, submits }));
  server.close();
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
