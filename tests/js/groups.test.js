// kafkajs 2.2.4 consumer groups against a real runnel broker (node --test):
// a consumer.run() member gets every partition, reads every record once,
// commits, and the next run of the same group starts where it stopped.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Kafka, logLevel } = require('kafkajs');
const { Broker, runnel } = require('./broker');

let broker;
let kafka;

before(async () => {
  // No initial rebalance delay: the first member's generation starts at once.
  broker = await new Broker({ 'group.initial.rebalance.delay.ms': '0' }).start();
  kafka = new Kafka({
    clientId: 'runnel-js-groups',
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

async function produce(topic, messages) {
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic, messages, acks: -1 });
  } finally {
    await producer.disconnect();
  }
}

// Resolves once pred() holds; rejects after `ms`.
async function until(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// One run of a group member: subscribes, collects records until `count`
// arrived (and `settleMs` more passed without surprises), disconnects.
async function runMember(groupId, topic, { count, settleMs = 0, autoCommit = true, onDone } = {}) {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 500,
    // disconnect() waits for the fetch in flight: keep long polls short.
    maxWaitTimeInMs: 200,
  });
  const got = [];
  let assignment = null;
  consumer.on(consumer.events.GROUP_JOIN, (e) => { assignment = e.payload.memberAssignment; });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit,
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, offset: Number(message.offset), key: message.key.toString(),
          value: message.value.toString() });
      },
    });
    await until(() => got.length >= count, 20000, `${count} records for ${groupId}`);
    if (settleMs) await new Promise((r) => setTimeout(r, settleMs));
    if (onDone) await onDone(consumer);
  } finally {
    await consumer.disconnect(); // commits what eachMessage finished, then LeaveGroup
  }
  return { got, assignment };
}

async function committedOffsets(groupId, topic) {
  return withAdmin(async (admin) => {
    const res = await admin.fetchOffsets({ groupId, topics: [topic] });
    return res[0].partitions.map((p) => [p.partition, Number(p.offset)])
      .sort((a, b) => a[0] - b[0]);
  });
}

test('group: every record once, committed, the next run gets only new ones', async () => {
  const topic = 'js-group';
  const groupId = 'js-group-1';
  await withAdmin((admin) => admin.createTopics({ topics: [{ topic, numPartitions: 3 }],
    waitForLeaders: true }));
  const sent = [];
  for (let i = 0; i < 30; i++) sent.push({ key: `k${i}`, value: `v${i}`, partition: i % 3 });
  await produce(topic, sent);

  const first = await runMember(groupId, topic, { count: 30, settleMs: 500 });
  assert.deepEqual(first.assignment, { [topic]: [0, 1, 2] });
  // Each record exactly once, in order per partition.
  assert.equal(first.got.length, 30);
  for (const part of [0, 1, 2]) {
    const mine = first.got.filter((r) => r.partition === part);
    assert.deepEqual(mine.map((r) => [r.offset, r.value]),
      sent.map((m, i) => [m, i]).filter(([m]) => m.partition === part)
        .map(([, i], j) => [j, `v${i}`]));
  }
  assert.deepEqual(await committedOffsets(groupId, topic), [[0, 10], [1, 10], [2, 10]]);
  await withAdmin(async (admin) => {
    const { groups } = await admin.describeGroups([groupId]);
    assert.deepEqual(groups.map((g) => [g.groupId, g.state, g.members.length]),
      [[groupId, 'Empty', 0]]);
    assert.ok((await admin.listGroups()).groups.some((g) => g.groupId === groupId));
  });

  // Three new records; the second run sees those and nothing old.
  await produce(topic, [0, 1, 2].map((p) => ({ key: `n${p}`, value: `new-${p}`, partition: p })));
  const second = await runMember(groupId, topic, { count: 3, settleMs: 1000 });
  assert.deepEqual(second.got.map((r) => [r.partition, r.offset, r.value])
    .sort((a, b) => a[0] - b[0]), [[0, 10, 'new-0'], [1, 10, 'new-1'], [2, 10, 'new-2']]);
  assert.deepEqual(await committedOffsets(groupId, topic), [[0, 11], [1, 11], [2, 11]]);
});

test('group: explicit commits land exactly, and runnel group describe shows the lag', async () => {
  const topic = 'js-group-manual';
  const groupId = 'js-group-2';
  await withAdmin((admin) => admin.createTopics({ topics: [{ topic, numPartitions: 3 }],
    waitForLeaders: true }));
  const sent = [];
  for (let i = 0; i < 30; i++) sent.push({ key: `k${i}`, value: `v${i}`, partition: i % 3 });
  await produce(topic, sent);

  await runMember(groupId, topic, {
    count: 30,
    autoCommit: false,
    onDone: (consumer) => consumer.commitOffsets([
      { topic, partition: 0, offset: '4' },
      { topic, partition: 1, offset: '7' },
      { topic, partition: 2, offset: '10' },
    ]),
  });
  assert.deepEqual(await committedOffsets(groupId, topic), [[0, 4], [1, 7], [2, 10]]);

  const r = await runnel(['group', 'describe', groupId, '-b', broker.bootstrap]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], `GROUP ${groupId}  STATE Empty  PROTOCOL -  MEMBERS 0`);
  assert.deepEqual(lines.slice(3).map((l) => l.split(/\s+/).slice(1, 6)), [
    [topic, '0', '4', '10', '6'],
    [topic, '1', '7', '10', '3'],
    [topic, '2', '10', '10', '0'],
  ]);

  // The next member resumes from those commits.
  const again = await runMember(groupId, topic, { count: 9, settleMs: 500 });
  assert.deepEqual(again.got.map((r) => [r.partition, r.offset]).sort((a, b) => a[0] - b[0] || a[1] - b[1]),
    [[0, 4], [0, 5], [0, 6], [0, 7], [0, 8], [0, 9], [1, 7], [1, 8], [1, 9]]);
});
