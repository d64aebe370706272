// kafkajs 2.2.4 against a real runnel broker, run with `node --test`.
//
// kafkajs has no consumer without a consumer group, and the broker has no
// group coordinator yet, so what kafkajs produces is read back with
// `runnel consume --format json` (librdkafka, manual assignment) and by
// looking at the stored batches.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Kafka, CompressionTypes, logLevel, Partitioners } = require('kafkajs');
require('./codecs');
const { Broker, runnel, readBatches } = require('./broker');

let broker;
let kafka;

before(async () => {
  broker = await new Broker().start();
  kafka = new Kafka({
    clientId: 'runnel-js-tests',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 3 },
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

async function withProducer(fn) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    return await fn(producer);
  } finally {
    await producer.disconnect();
  }
}

async function consumeJson(topic, count) {
  const r = await runnel(['consume', topic, '-b', broker.bootstrap, '--from-beginning',
    '--count', String(count), '--timeout-ms', '15000', '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('admin: create, metadata, configs, delete', async () => {
  await withAdmin(async (admin) => {
    const created = await admin.createTopics({
      topics: [{ topic: 'js-admin', numPartitions: 3,
        configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
      waitForLeaders: true,
    });
    assert.equal(created, true);
    // An existing topic: kafkajs resolves false instead of throwing.
    assert.equal(await admin.createTopics({ topics: [{ topic: 'js-admin' }] }), false);

    assert.ok((await admin.listTopics()).includes('js-admin'));
    const md = await admin.fetchTopicMetadata({ topics: ['js-admin'] });
    assert.equal(md.topics.length, 1);
    const parts = [...md.topics[0].partitions].sort((a, b) => a.partitionId - b.partitionId);
    assert.deepEqual(parts.map((p) => [p.partitionId, p.leader, p.replicas, p.isr, p.partitionErrorCode]),
      [[0, 1, [1], [1], 0], [1, 1, [1], [1], 0], [2, 1, [1], [1], 0]]);

    const cfg = await admin.describeConfigs({
      resources: [{ type: 2 /* TOPIC */, name: 'js-admin', configNames: ['retention.ms'] }],
      includeSynonyms: false,
    });
    const entry = cfg.resources[0].configEntries.find((e) => e.configName === 'retention.ms');
    assert.equal(entry.configValue, '3600000');
    assert.equal(entry.isDefault, false);

    await assert.rejects(
      admin.createTopics({ topics: [{ topic: 'bad name!' }] }),
      (err) => {
        assert.deepEqual(err.errors.map((e) => [e.type, e.code]), [['INVALID_TOPIC_EXCEPTION', 17]]);
        return true;
      },
    );

    await admin.deleteTopics({ topics: ['js-admin'] });
    assert.ok(!(await admin.listTopics()).includes('js-admin'));
  });
});

// All four Kafka codecs (codecs.js registers the three kafkajs lacks).
for (const [name, codec] of [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy], ['lz4', CompressionTypes.LZ4],
  ['zstd', CompressionTypes.ZSTD]]) {
  test(`producer: keys, headers, partitions, timestamps (${name})`, async () => {
    const topic = `js-prod-${name}`;
    await withAdmin((admin) => admin.createTopics({ topics: [{ topic, numPartitions: 2 }],
      waitForLeaders: true }));
    const base = Date.now() - 60000;
    const messages = [];
    for (let i = 0; i < 6; i++) {
      messages.push({
        key: i === 5 ? null : `key-${i}`,
        value: `value-${i}-${'x'.repeat(100)}`,
        partition: i % 2,
        headers: { idx: String(i), codec: name },
        timestamp: String(base + i * 1000),
      });
    }
    const meta = await withProducer((p) => p.send({ topic, messages, compression: codec, acks: -1 }));
    const bases = meta.map((m) => [m.partition, m.errorCode, m.baseOffset]).sort();
    assert.deepEqual(bases, [[0, 0, '0'], [1, 0, '0']]);

    await withAdmin(async (admin) => {
      const offs = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition);
      assert.deepEqual(offs.map((o) => [o.partition, o.low, o.high]), [[0, '0', '3'], [1, '0', '3']]);
      // First record at or after a timestamp: partition 1 holds i = 1, 3, 5.
      const byTs = (await admin.fetchTopicOffsetsByTimestamp(topic, base + 2500))
        .sort((a, b) => a.partition - b.partition);
      assert.deepEqual(byTs.map((o) => [o.partition, o.offset]), [[0, '2'], [1, '1']]);
    });

    const recs = await consumeJson(topic, 6);
    recs.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    const want = [0, 2, 4, 1, 3, 5].map((i) => messages[i]);
    assert.deepEqual(recs.map((r) => [r.partition, r.offset, r.key, r.value, r.timestamp]),
      want.map((m, j) => [m.partition, j % 3, m.key, m.value, Number(m.timestamp)]));
    for (const r of recs) {
      const i = Number(r.value.split('-')[1]);
      assert.deepEqual(r.headers, [{ key: 'idx', value: String(i) }, { key: 'codec', value: name }]);
    }

    // One batch per partition on disk, magic 2, compressed as sent.
    for (const part of [0, 1]) {
      const batches = readBatches(path.join(broker.partitionDir(topic, part), '00000000000000000000.log'));
      assert.deepEqual(batches.map((b) => [b.base, b.magic, b.attributes & 7, b.count]),
        [[0, 2, codec, 3]]); // kafkajs's codec numbers are Kafka's attribute bits
    }
  });
}

test('producer: auto-created topic and acks=1', async () => {
  const meta = await withProducer((p) => p.send({ topic: 'js-auto', acks: 1,
    messages: [{ value: 'a' }, { value: 'b' }] }));
  assert.deepEqual(meta.map((m) => [m.topicName, m.partition, m.errorCode, m.baseOffset]),
    [['js-auto', 0, 0, '0']]);
  const recs = await consumeJson('js-auto', 2);
  assert.deepEqual(recs.map((r) => [r.offset, r.key, r.value]), [[0, null, 'a'], [1, null, 'b']]);
});
