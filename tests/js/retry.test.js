// kafkajs 2.2.4 following docs/delivery.md's retry recipe against a real
// runnel broker (node --test): a group member that fails a record produces
// it to __runnel.retry.G and commits; the broker brings it back after each
// backoff with runnel-retry-count, then dead-letters it into
// __runnel.dlq.G; `runnel dlq redrive` brings it back once with count 0.
// The group's schedule and maximum are set with AlterConfigs on the retry
// topic.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs');
const { Broker, runnel } = require('./broker');

// How late a retry may come on a busy two-core machine; never early.
const LATE_SLACK_MS = 1000;

let broker;
let kafka;

before(async () => {
  broker = await new Broker({
    'group.initial.rebalance.delay.ms': '0',
    'group.min.session.timeout.ms': '1000',
  }).start();
  kafka = new Kafka({
    clientId: 'runnel-js-retry',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5 },
  });
});

after(async () => {
  if (broker) await broker.stop();
});

async function withAdmin(fn) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

async function until(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// kafkajs gives a header seen twice as an array: the broker must replace
// its own headers, never add a second copy.
function headerMap(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers || {})) {
    assert.ok(!Array.isArray(v), `header ${k} appears more than once`);
    out[k] = v.toString();
  }
  return out;
}

// The admin API's host:port, as the broker logged it (admin.listener port 0).
function adminAddr() {
  const m = broker.stderr.match(/admin API on http:\/\/(\S+)/);
  assert.ok(m, `no admin API address in the broker's log:\n${broker.stderr}`);
  return m[1];
}

async function highWatermark(topic) {
  return withAdmin(async (admin) => {
    const offs = await admin.fetchTopicOffsets(topic);
    return Number(offs.find((o) => o.partition === 0).high);
  });
}

async function readAll(topic, groupId) {
  const count = await highWatermark(topic);
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  const got = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => { got.push(message); } });
    await until(() => got.length >= count, 15000, `${count} records of ${topic}`);
  } finally {
    await consumer.disconnect();
  }
  return got;
}

test('retry recipe: backoffs, dead letter with history, redrive once', async () => {
  const group = 'js-billing';
  const topic = 'js-payments';
  const retry = `__runnel.retry.${group}`;
  const dlq = `__runnel.dlq.${group}`;
  const bs = ['-b', broker.bootstrap];

  await withAdmin(async (admin) => {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    // Naming the retry topic creates it, with one partition.
    const md = await admin.fetchTopicMetadata({ topics: [retry] });
    assert.deepEqual(md.topics[0].partitions.map((p) => p.partitionId), [0]);
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{
        type: ConfigResourceTypes.TOPIC,
        name: retry,
        configEntries: [
          { name: 'retry.backoff.schedule', value: '1s 2s' },
          { name: 'retry.max.attempts', value: '2' },
        ],
      }],
    });
    const desc = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: retry,
        configNames: ['retry.backoff.schedule', 'retry.max.attempts'] }],
      includeSynonyms: false,
    });
    const entries = Object.fromEntries(desc.resources[0].configEntries
      .map((e) => [e.configName, e.configValue]));
    assert.deepEqual(entries, { 'retry.backoff.schedule': '1s 2s', 'retry.max.attempts': '2' });
  });

  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: [
    { key: 'order-9', value: 'charge 30', headers: { trace: 't-9' } },
    { key: 'order-10', value: 'fine' },
  ] });

  let failing = true;
  const events = [];
  const consumer = kafka.consumer({
    groupId: group,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100,
    metadataMaxAge: 1000,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic, retry], fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      eachMessage: async ({ topic: t, partition, message }) => {
        const ev = { at: Date.now(), topic: t, partition, offset: Number(message.offset),
          key: message.key.toString(), value: message.value.toString(),
          headers: headerMap(message.headers), failed: false };
        if (failing && ev.value === 'charge 30') {
          const headers = { ...message.headers };
          if (!('runnel-original-topic' in headers)) {
            headers['runnel-original-topic'] = t;
            headers['runnel-original-partition'] = String(partition);
            headers['runnel-original-offset'] = message.offset;
          }
          ev.sentMs = Date.now();
          await producer.send({ topic: retry, messages: [{ key: message.key, value: message.value, headers }] });
          ev.ackedMs = Date.now();
          ev.failed = true;
        }
        events.push(ev);
      },
    });

    const failures = () => events.filter((e) => e.failed);
    // First delivery and two retries fail; the third failure is past
    // retry.max.attempts and goes to the dead-letter queue at once.
    await until(() => failures().length >= 3, 3000 + 3 * LATE_SLACK_MS + 15000, 'three failures');
    const [first, ...retries] = failures();
    assert.deepEqual([first.topic, first.offset, first.headers], [topic, 0, { trace: 't-9' }]);
    assert.deepEqual(events.filter((e) => !e.failed).map((e) => e.value), ['fine']);
    const backoffs = [1000, 2000];
    let firstMs = null;
    retries.forEach((e, i) => {
      const prev = failures()[i];
      assert.deepEqual([e.topic, e.partition, e.offset, e.key, e.value], [retry, 0, i, 'order-9', 'charge 30']);
      assert.equal(e.headers['runnel-retry-count'], String(i + 1));
      assert.equal(e.headers.trace, 't-9');
      assert.deepEqual([e.headers['runnel-original-topic'], e.headers['runnel-original-partition'],
        e.headers['runnel-original-offset']], [topic, '0', '0']);
      const fm = Number(e.headers['runnel-retry-first-ms']);
      assert.ok(first.sentMs <= fm && fm <= first.ackedMs, `first-ms ${fm} outside the first failure`);
      firstMs = firstMs ?? fm;
      assert.equal(fm, firstMs);
      assert.ok(e.at >= prev.sentMs + backoffs[i], `retry ${i + 1} came early`);
      assert.ok(e.at <= prev.ackedMs + backoffs[i] + LATE_SLACK_MS, `retry ${i + 1} came late`);
    });
    assert.equal(await highWatermark(retry), 2);

    await until(async () => (await highWatermark(dlq).catch(() => 0)) >= 1, 5000, 'the dead letter');
    const [dead] = await readAll(dlq, 'js-dlq-reader');
    const dh = headerMap(dead.headers);
    assert.deepEqual([dead.key.toString(), dead.value.toString(), dh['runnel-retry-count'], dh.trace],
      ['order-9', 'charge 30', '2', 't-9']);
    assert.equal(Number(dh['runnel-retry-first-ms']), firstMs);
    assert.ok(dh['runnel-dlq-reason'], 'empty runnel-dlq-reason');
    const last = failures()[2];
    const dlqAt = Number(dh['runnel-dlq-at-ms']);
    assert.ok(last.sentMs <= dlqAt && dlqAt <= last.ackedMs, `runnel-dlq-at-ms ${dlqAt}`);

    const dlqList = async () => {
      const res = await runnel(['dlq', 'list', group, ...bs]);
      assert.equal(res.code, 0, res.stderr);
      const rows = res.stdout.trim().split('\n').map((l) => l.split('\t'));
      assert.deepEqual(rows[0], ['OFFSET', 'TIMESTAMP', 'RETRIES', 'FROM', 'REASON', 'KEY', 'VALUE']);
      return rows.slice(1).map((row) => [row[0], row[2], row[3], row[5], row[6]]);
    };
    assert.deepEqual(await dlqList(), [['0', '2', `${topic}/0@0`, 'order-9', 'charge 30']]);

    // Redrive: appended at once with count 0; the member succeeds now.
    failing = false;
    const before = events.length;
    let r = await runnel(['dlq', 'redrive', group, ...bs]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^re-drove 1 records /);
    assert.equal(await highWatermark(retry), 3);
    await until(() => events.length > before, 10000, 'the re-driven record');
    const again = events[before];
    assert.deepEqual([again.topic, again.offset, again.value, again.headers['runnel-retry-count']],
      [retry, 2, 'charge 30', '0']);
    assert.ok(!('runnel-redrive' in again.headers));

    r = await runnel(['dlq', 'redrive', group, ...bs]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^re-drove 0 records /);
    assert.equal(await highWatermark(retry), 3);
    assert.equal(await highWatermark(dlq), 1);
    assert.deepEqual(await dlqList(), [['*0', '2', `${topic}/0@0`, 'order-9', 'charge 30']]);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
});

test('a bad delay header: kafkajs reports INVALID_RECORD and nothing is stored', async () => {
  const topic = 'js-delayed';
  await withAdmin((admin) => admin.createTopics({
    topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'message.type', value: 'delay' }] }],
    waitForLeaders: true,
  }));
  const producer = kafka.producer({ retry: { retries: 0 } });
  await producer.connect();
  try {
    for (const headers of [{ 'runnel-delay-ms': 'soon' }, { 'runnel-delay-level': '19' }]) {
      // One batch: a good delayed record and a bad one.
      const err = await producer.send({ topic, acks: -1, messages: [
        { value: 'good', headers: { 'runnel-delay-ms': '1000' } },
        { value: 'bad', headers },
      ] }).then(() => null, (e) => e);
      assert.ok(err, `accepted ${JSON.stringify(headers)}`);
      // kafkajs wraps the broker's answer; the protocol error is the cause.
      const proto = err.type ? err : err.cause;
      assert.equal(proto.name, 'KafkaJSProtocolError', String(err));
      assert.equal(proto.type, 'INVALID_RECORD');
      assert.equal(proto.code, 87);
    }
    const r = await runnel(['delayed', 'count', '--topic', topic, '--admin', adminAddr()]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['TOPIC\tDELAY\tRETRY\tHALF', `${topic}\t0\t0\t0`]);
    // The topic still takes good records.
    const [res] = await producer.send({ topic, acks: -1, messages: [{ value: 'plain' }] });
    assert.equal(res.errorCode, 0);
    assert.equal(await highWatermark(topic), 1);
  } finally {
    await producer.disconnect();
  }
});
