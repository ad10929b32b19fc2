// A Node xDS client (grpc-js-xds, not written here) for podlb's tests. Reads its bootstrap from
// GRPC_XDS_BOOTSTRAP_CONFIG, dials xds:///TARGET and prints one JSON line:
//   node xds_client.js spread TARGET N            -> {"pod-0": 100, ..., "": failures}
//   node xds_client.js ring TARGET HEADER K v1,v2 -> {"v1": ["pod-2"], ...}  (pods per value)
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
require('@grpc/grpc-js-xds').register();

const [mode, target, ...rest] = process.argv.slice(2);
const definition = protoLoader.loadSync('grpc/testing/test.proto', {
  includeDirs: ['/usr/share/grpc-proto'],
});
const TestService = grpc.loadPackageDefinition(definition).grpc.testing.TestService;
const client = new TestService('xds:///' + target, grpc.credentials.createInsecure());

function call(metadata) {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata || {})) md.set(k, v);
    client.UnaryCall({}, md, {deadline: Date.now() + 10000, waitForReady: true},
                     (err, response) => resolve(err ? '' : response.hostname));
  });
}

async function main() {
  const out = {};
  if (mode === 'spread') {
    const n = parseInt(rest[0], 10);
    for (let i = 0; i < n; i++) {
      const who = await call();
      out[who] = (out[who] || 0) + 1;
    }
  } else if (mode === 'ring') {
    const [header, k, values] = [rest[0], parseInt(rest[1], 10), rest[2].split(',')];
    for (const value of values) {
      const pods = new Set();
      for (let i = 0; i < k; i++) pods.add(await call({[header]: value}));
      out[value] = [...pods];
    }
  }
  console.log(JSON.stringify(out));
  client.close();
  process.exit(0);
}
main();
