// Starts and stops a real runnel broker for the kafkajs tests, the same way
// tests/integration/conftest.py does: $RUNNEL_BIN (default build/runnel,
// relative to the repository root) on a free loopback port, data in a fresh
// temporary directory, ready once stderr says "listening on".
'use strict';

const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 30000;

function runnelBin() {
  const bin = process.env.RUNNEL_BIN || 'build/runnel';
  return path.isAbsolute(bin) ? bin : path.join(REPO, bin);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

class Broker {
  constructor(settings = {}) {
    this.settings = settings;
    this.stderr = '';
  }

  async start() {
    this.port = await freePort();
    this.bootstrap = `127.0.0.1:${this.port}`;
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runnel-js-'));
    // admin.listener port 0: brokers of tests run in parallel never
    // collide on the default admin port.
    const args = ['broker', '--set', `listeners=PLAINTEXT://${this.bootstrap}`,
      '--set', `log.dirs=${this.dataDir}`, '--set', 'admin.listener=127.0.0.1:0'];
    for (const [k, v] of Object.entries(this.settings)) args.push('--set', `${k}=${v}`);
    this.proc = spawn(runnelBin(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({ code, signal }));
    });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `broker did not listen within ${START_TIMEOUT_MS} ms:\n${this.stderr}`)), START_TIMEOUT_MS);
      this.proc.stderr.on('data', (chunk) => {
        this.stderr += chunk.toString();
        if (this.stderr.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      this.proc.on('error', (err) => { clearTimeout(timer); reject(err); });
      this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`broker exited (${code ?? signal}) before listening:\n${this.stderr}`));
      });
    });
    return this;
  }

  // SIGTERM, then the exit status must be 0 (so no sanitizer report either).
  async stop() {
    if (!this.proc) return;
    const proc = this.proc;
    this.proc = null;
    proc.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), STOP_TIMEOUT_MS);
    });
    const result = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    if (result === null) {
      proc.kill('SIGKILL');
      throw new Error(`broker ignored SIGTERM for ${STOP_TIMEOUT_MS} ms:\n${this.stderr}`);
    }
    if (result.code !== 0) {
      throw new Error(`broker exited with ${result.code ?? result.signal}:\n${this.stderr}`);
    }
  }

  partitionDir(topic, partition) {
    return path.join(this.dataDir, `${topic}-${partition}`);
  }
}

// Runs `runnel ARGS...` and resolves to { code, stdout, stderr }.
function runnel(args, { timeout = 60000 } = {}) {
  return new Promise((resolve) => {
    execFile(runnelBin(), args, { timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

// [{ base, magic, attributes, count }] of a segment file, read from its
// bytes (Kafka's RecordBatch v2 layout).
function readBatches(file) {
  const data = fs.readFileSync(file);
  const out = [];
  let pos = 0;
  while (pos + 61 <= data.length) {
    const length = data.readInt32BE(pos + 8);
    if (length <= 0) break;
    out.push({
      base: Number(data.readBigInt64BE(pos)),
      magic: data.readInt8(pos + 16),
      attributes: data.readInt16BE(pos + 21),
      count: data.readInt32BE(pos + 57),
    });
    pos += 12 + length;
  }
  return out;
}

module.exports = { Broker, runnel, readBatches, runnelBin };
