// kafkajs 2.2.4 reading filtered views (docs/filtered-views.md) with a
// consumer group: exactly the matching records, in order per partition, at
// their source offsets; the group commits and the next run resumes; a long
// non-matching stretch is crossed (kafkajs ignores a batch without records,
// so it relies on the marker when reading committed and on the view's
// memory of what it scanned when reading uncommitted).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Kafka, logLevel } = require('kafkajs');
const { Broker } = require('./broker');

let broker;
let kafka;

before(async () => {
  broker = await new Broker({ 'group.initial.rebalance.delay.ms': '0' }).start();
  kafka = new Kafka({
    clientId: 'runnel-js-views',
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

// Sends messages (each with its partition) and returns, per partition,
// [offset, value, headers] in order.
async function produce(topic, messages) {
  const producer = kafka.producer();
  await producer.connect();
  const byPart = {};
  try {
    for (const part of [...new Set(messages.map((m) => m.partition))]) {
      const mine = messages.filter((m) => m.partition === part);
      const [meta] = await producer.send({ topic, messages: mine, acks: -1 });
      const base = Number(meta.baseOffset);
      byPart[part] = mine.map((m, i) => [base + i, m.value, m.headers || {}]);
    }
  } finally {
    await producer.disconnect();
  }
  return byPart;
}

// A deterministic mix of tags and regions over three partitions.
function mixed(n, start) {
  const tags = ['paid', 'new', 'refunded', 'shipped', null];
  const regions = ['eu', 'us', null];
  const out = [];
  for (let i = start; i < start + n; i++) {
    const headers = {};
    const tag = tags[(i * 7) % 5];
    const region = regions[(i * 5 + Math.floor(i / 3)) % 3];
    if (tag) headers.tag = tag;
    if (region) headers.region = region;
    out.push({ key: `k${i}`, value: `v${i}`, partition: i % 3, headers });
  }
  return out;
}

const tagMatch = (h) => h.tag === 'paid' || h.tag === 'refunded';
const sqlMatch = (h) => tagMatch(h) && h.region === 'eu';

function expected(byPart, match) {
  const out = {};
  for (const [p, recs] of Object.entries(byPart)) {
    out[p] = recs.filter(([, , h]) => match(h)).map(([o, v]) => [o, v]);
  }
  return out;
}

async function until(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// One run of a group member on `topic` until `count` records arrived and
// `settleMs` more passed; returns them per partition.
async function runMember(groupId, topic, count, opts = {}) {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
    ...opts,
  });
  const got = {};
  let n = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        (got[partition] ||= []).push([Number(message.offset), message.value.toString(),
          Object.fromEntries(Object.entries(message.headers || {})
            .map(([k, v]) => [k, v.toString()]))]);
        n++;
      },
    });
    await until(() => n >= count, 30000, `${count} records of ${topic}`);
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await consumer.disconnect(); // commits what eachMessage finished
  }
  assert.equal(n, count, `exactly ${count} records of ${topic}`);
  return got;
}

function checkSame(got, want, match) {
  for (const p of ['0', '1', '2']) {
    const mine = (got[p] || []);
    assert.deepEqual(mine.map(([o, v]) => [o, v]), want[p] || [], `partition ${p}`);
    for (const [, , h] of mine) assert.ok(match(h), `headers ${JSON.stringify(h)} match`);
  }
}

async function committed(groupId, topic) {
  return withAdmin(async (admin) => {
    const res = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Object.fromEntries(res[0].partitions.map((p) => [p.partition, Number(p.offset)]));
  });
}

test('views: a group gets exactly the matching records, commits and resumes', async () => {
  await withAdmin(async (admin) => {
    await admin.createTopics({ topics: [{ topic: 'js-orders', numPartitions: 3 }],
      waitForLeaders: true });
  });
  const first = await produce('js-orders', mixed(300, 0));
  await withAdmin(async (admin) => {
    assert.equal(await admin.createTopics({ topics: [
      { topic: 'js-paid', numPartitions: 3,
        configEntries: [{ name: 'view.source', value: 'js-orders' },
          { name: 'view.filter', value: 'paid || refunded' }] },
      { topic: 'js-paid-eu', numPartitions: 3,
        configEntries: [{ name: 'view.source', value: 'js-orders' },
          { name: 'view.filter.type', value: 'SQL92' },
          { name: 'view.filter', value: "tag IN ('paid','refunded') AND region = 'eu'" }] },
    ] }), true);
    const md = await admin.fetchTopicMetadata({ topics: ['js-paid-eu'] });
    assert.equal(md.topics[0].partitions.length, 3);
  });

  for (const [view, match] of [['js-paid', tagMatch], ['js-paid-eu', sqlMatch]]) {
    const want = expected(first, match);
    const total = Object.values(want).reduce((a, l) => a + l.length, 0);
    assert.ok(total > 0 && total < 300);
    const got = await runMember(`g-${view}`, view, total);
    checkSame(got, want, match);
    // Committed past the last record delivered, never past the end.
    const c = await committed(`g-${view}`, view);
    for (const p of [0, 1, 2]) {
      const last = want[p][want[p].length - 1][0];
      assert.ok(c[p] >= last + 1 && c[p] <= first[p][first[p].length - 1][0] + 1,
        `${view} partition ${p} committed ${c[p]}`);
    }
  }

  // The next run of each group gets only the new matching records.
  const second = await produce('js-orders', mixed(150, 300));
  for (const [view, match] of [['js-paid', tagMatch], ['js-paid-eu', sqlMatch]]) {
    const want = expected(second, match);
    const total = Object.values(want).reduce((a, l) => a + l.length, 0);
    checkSame(await runMember(`g-${view}`, view, total), want, match);
  }
});

for (const readUncommitted of [false, true]) {
  test(`views: a long non-matching stretch is crossed (readUncommitted ${readUncommitted})`,
    async () => {
      const src = `js-noise-${readUncommitted}`;
      const view = `js-rare-${readUncommitted}`;
      await withAdmin(async (admin) => {
        await admin.createTopics({ topics: [{ topic: src, numPartitions: 1 }],
          waitForLeaders: true });
        await admin.createTopics({ topics: [{ topic: view, configEntries: [
          { name: 'view.source', value: src }, { name: 'view.filter', value: 'rare' }] }] });
      });
      await produce(src, [{ value: 'first', partition: 0, headers: { tag: 'rare' } }]);
      for (let b = 0; b < 40; b++) {
        await produce(src, Array.from({ length: 100 },
          (_, i) => ({ value: `n${b}-${i}`.padEnd(100, '.'), partition: 0,
            headers: { tag: 'noise' } })));
      }
      await produce(src, [{ value: 'last', partition: 0, headers: { tag: 'rare' } }]);
      // 4 KiB per fetch: the 4000 records in between take many fetches.
      const got = await runMember(`g-${view}`, view, 2,
        { readUncommitted, maxBytesPerPartition: 4096, maxBytes: 4096 });
      assert.deepEqual(got[0].map(([o, v]) => [o, v]), [[0, 'first'], [4001, 'last']]);
    });
}
