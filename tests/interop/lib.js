// Shared helpers for the interop scripts: run interop_link_peer (one real donagate link) as a
// child process, collect its JSON-line events, and assert.
'use strict';
const { spawn } = require('child_process');
const path = require('path');
const readline = require('readline');

const binaryDir = process.env.DONAGATE_BINARY_DIR || path.join(__dirname, '..', '..', 'build');
const probePath = path.join(binaryDir, 'tools', 'link_probe', 'interop_link_peer');

let failures = 0;
function check(condition, message) {
  if (condition) {
    console.log('ok   - ' + message);
  } else {
    failures++;
    console.log('FAIL - ' + message);
  }
  return condition;
}
function fatal(message) {
  console.log('FAIL - ' + message);
  process.exit(1);
}
function finish() {
  if (failures > 0) {
    console.log(failures + ' check(s) failed');
    process.exit(1);
  }
  console.log('all checks passed');
  process.exit(0);
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

// Polls `predicate` every 10 ms until it returns a truthy value or `timeoutMs` passes.
async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) fatal('timed out waiting for ' + what);
    await sleep(10);
  }
}

// Starts the probe; `events` fills with every JSON line it prints.
function startProbe(args) {
  const child = spawn(probePath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const probe = { child, events: [], exited: null };
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      probe.events.push(JSON.parse(line));
    } catch (e) {
      console.log('probe printed a non-JSON line: ' + line);
    }
  });
  child.on('exit', (code, signal) => { probe.exited = { code, signal }; });
  probe.mos = () => probe.events.filter((e) => e.event === 'mo');
  probe.states = () => probe.events.filter((e) => e.event === 'state').map((e) => e.state);
  probe.submitResults = () => probe.events.filter((e) => e.event === 'submit_result');
  probe.send = (line) => child.stdin.write(line + '\n');
  probe.kill = () => { if (!probe.exited) child.kill('SIGKILL'); };
  process.on('exit', () => probe.kill());
  return probe;
}

// GSM 03.38 default alphabet (unpacked septets) for the characters the tests use.
const GSM_BASIC = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXT = { '\f': 0x0A, '^': 0x14, '{': 0x28, '}': 0x29, '\\': 0x2F, '[': 0x3C, '~': 0x3D,
  ']': 0x3E, '|': 0x40, '€': 0x65 };
function gsm7(text) {
  const out = [];
  for (const ch of text) {
    const i = GSM_BASIC.indexOf(ch);
    if (i >= 0 && ch !== '\x1b') out.push(i);
    else if (ch in GSM_EXT) out.push(0x1b, GSM_EXT[ch]);
    else throw new Error('not GSM: ' + ch);
  }
  return Buffer.from(out);
}

module.exports = { check, fatal, finish, sleep, waitFor, startProbe, gsm7, probePath };
