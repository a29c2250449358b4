// node-smpp plays the operator's SMSC for tests/interop/keyword_flows_test.sh, driven line by
// line: every stdin line is a JSON command, every stdout line a JSON event.
//   {"op":"deliver","key":K,"source":MSISDN,"text":T[,"session":I][,"esm_class":E][,"ucs2":true]}
//        -> {"ev":"resp","key":K,"status":S}       (deliver_sm_resp command_status)
//   submit_sm received -> {"ev":"submit","to":MSISDN,"text":T}   (answered with an id)
//   bind -> {"ev":"bound","sessions":N};  {"op":"quit"} ends the process.
// Several daemons may bind at once; "session" picks which one gets the deliver_sm (default:
// the newest still open).
'use strict';
const smpp = require('smpp');
const readline = require('readline');

const port = Number(process.argv[2]);
const sessions = [];
let submits = 0;
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const server = smpp.createServer((s) => {
  s.on('error', () => {});
  s.on('close', () => { const i = sessions.indexOf(s); if (i >= 0) sessions.splice(i, 1); });
  s.on('bind_transceiver', (pdu) => {
    s.send(pdu.response({ system_id: 'nodesmsc' }));
    sessions.push(s);
    emit({ ev: 'bound', sessions: sessions.length });
  });
  s.on('enquire_link', (pdu) => s.send(pdu.response()));
  s.on('unbind', (pdu) => { s.send(pdu.response()); s.close(); });
  s.on('submit_sm', (pdu) => {
    let text;
    const raw = Buffer.isBuffer(pdu.short_message) ? pdu.short_message
      : (pdu.short_message && pdu.short_message.message !== undefined ? pdu.short_message.message : pdu.short_message);
    if (Buffer.isBuffer(raw)) {
      text = pdu.data_coding === 8 ? raw.swap16().toString('utf16le') : raw.toString('latin1');
    } else {
      text = String(raw);
    }
    submits += 1;
    s.send(pdu.response({ message_id: 'M' + submits }));
    emit({ ev: 'submit', to: pdu.destination_addr, text });
  });
});

server.listen(port, '127.0.0.1');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.op === 'quit') { server.close(); process.exit(0); }
  if (cmd.op !== 'deliver') return;
  const s = cmd.session !== undefined ? sessions[cmd.session] : sessions[sessions.length - 1];
  if (!s) { emit({ ev: 'resp', key: cmd.key, status: -1 }); return; }
  s.deliver_sm({ source_addr: cmd.source, source_addr_ton: 1, source_addr_npi: 1,
    destination_addr: '1407', esm_class: cmd.esm_class || 0, data_coding: cmd.ucs2 ? 8 : 0,
    short_message: cmd.ucs2 ? Buffer.from(cmd.text, 'utf16le').swap16() : Buffer.from(cmd.text, 'latin1') }, (resp) => emit({ ev: 'resp', key: cmd.key, status: resp.command_status }));
});
rl.on('close', () => { server.close(); process.exit(0); });
