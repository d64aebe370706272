// kafkajs 2.2.4 in a broadcast group (message.model=BROADCASTING, declared
// with `runnel group config`): three consumers with distinct clientIds each
// get every partition and every record, and each commits its own offsets.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Kafka, logLevel } = require('kafkajs');
const { Broker, runnel } = require('./broker');

let broker;

before(async () => {
  broker = await new Broker({ 'group.initial.rebalance.delay.ms': '0' }).start();
});

after(async () => {
  if (broker) await broker.stop();
});

// A Kafka client per member: kafkajs sets the clientId per client, and a
// broadcast group tells instances apart by it.
function kafka(clientId) {
  return new Kafka({
    clientId,
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5 },
  });
}

async function until(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('broadcast: three kafkajs consumers each read every record', async () => {
  const topic = 'js-bcast';
  const groupId = 'js-bcast-group';
  const admin = kafka('js-bcast-admin').admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  const set = await runnel(['group', 'config', groupId, '--set', 'message.model=BROADCASTING',
    '-b', broker.bootstrap]);
  assert.equal(set.code, 0, set.stderr);

  const names = ['js-a', 'js-b', 'js-c'];
  const members = names.map((name) => ({
    name,
    consumer: kafka(name).consumer({
      groupId, sessionTimeout: 10000, rebalanceTimeout: 10000, heartbeatInterval: 500,
      maxWaitTimeInMs: 200,
    }),
    got: [],
    assignment: null,
  }));
  try {
    for (const m of members) {
      m.consumer.on(m.consumer.events.GROUP_JOIN, (e) => {
        m.assignment = e.payload.memberAssignment;
      });
      await m.consumer.connect();
      await m.consumer.subscribe({ topics: [topic], fromBeginning: true });
      await m.consumer.run({
        eachMessage: async ({ partition, message }) => {
          m.got.push([partition, Number(message.offset), message.value.toString()]);
        },
      });
    }
    // Every member, whenever it joined, holds every partition.
    await until(() => members.every((m) => m.assignment && m.assignment[topic]
      && m.assignment[topic].length === 3), 30000, 'every member to hold every partition');

    const producer = kafka('js-bcast-producer').producer();
    await producer.connect();
    const sent = [];
    for (let i = 0; i < 24; i++) sent.push({ key: `k${i}`, value: `v${i}`, partition: i % 3 });
    try {
      await producer.send({ topic, messages: sent, acks: -1 });
    } finally {
      await producer.disconnect();
    }
    const want = sent.map((m, i) => [m.partition, Math.floor(i / 3), m.value])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    await until(() => members.every((m) => m.got.length >= 24), 30000, 'every member to read 24');
    for (const m of members) {
      assert.deepEqual([...m.got].sort((a, b) => a[0] - b[0] || a[1] - b[1]), want, m.name);
      assert.deepEqual([...m.assignment[topic]].sort(), [0, 1, 2], m.name);
    }
  } finally {
    // disconnect() commits what was read, then leaves.
    for (const m of members) await m.consumer.disconnect();
  }

  // Each instance committed its own offsets: describe shows all three at
  // the end of every partition.
  const r = await runnel(['group', 'describe', groupId, '-b', broker.bootstrap]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], `GROUP ${groupId}  STATE Empty  PROTOCOL -  MEMBERS 0  MODEL BROADCASTING`);
  assert.deepEqual(lines.slice(3).map((l) => l.split(/\s+/).slice(1, 7)),
    names.flatMap((n) => [0, 1, 2].map((p) => [n, topic, `${p}`, '8', '8', '0'])));
});
