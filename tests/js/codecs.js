'use strict';
// kafkajs compresses GZIP itself; these register Snappy, LZ4 and ZSTD so
// the tests can send all four Kafka codecs.  Pure JavaScript (and
// WebAssembly for zstd), so nothing is compiled at install time.
const { CompressionTypes, CompressionCodecs } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
const lz4 = require('lz4js');
const { ZstdCodec } = require('zstd-codec');

let zstdSimple = null;
const zstdReady = new Promise((resolve) => {
  ZstdCodec.run((zstd) => {
    zstdSimple = new zstd.Simple();
    resolve();
  });
});

// Kafka's LZ4 is the LZ4 frame format, which lz4js writes and reads.
const LZ4Codec = () => ({
  async compress(encoder) {
    return Buffer.from(lz4.compress(encoder.buffer));
  },
  async decompress(buffer) {
    return Buffer.from(lz4.decompress(buffer));
  },
});

const ZstdKafkaCodec = () => ({
  async compress(encoder) {
    await zstdReady;
    return Buffer.from(zstdSimple.compress(encoder.buffer, 3));
  },
  async decompress(buffer) {
    await zstdReady;
    return Buffer.from(zstdSimple.decompress(buffer));
  },
});

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = LZ4Codec;
CompressionCodecs[CompressionTypes.ZSTD] = ZstdKafkaCodec;

module.exports = { zstdReady };
