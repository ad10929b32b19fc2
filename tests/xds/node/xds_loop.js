// A Node xDS client (grpc-js-xds) that calls xds:///TARGET back to back, without waitForReady,
// until killed, for podlb's sandbox and xDS tests. Bootstrap from GRPC_XDS_BOOTSTRAP_CONFIG.
//   node xds_loop.js TARGET [PROBE_TARGET]
// Prints:
//   probe RESULT         with PROBE_TARGET, after the first answer from TARGET: one call to
//                        xds:///PROBE_TARGET (whose resources the client may reject), then the
//                        loop; RESULT is the answering pod or the error code
//   first POD NS         the first answer from POD, at CLOCK_MONOTONIC nanoseconds NS
//   fail CODE DETAILS    a failed call
//   window {"pod": n}    on SIGUSR2: the answers of the next 200 calls (SIGUSR1 is Node's)
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
require('@grpc/grpc-js-xds').register();

const [target, probeTarget] = process.argv.slice(2);
const definition = protoLoader.loadSync('grpc/testing/test.proto', {
  includeDirs: ['/usr/share/grpc-proto'],
});
const TestService = grpc.loadPackageDefinition(definition).grpc.testing.TestService;
const client = new TestService('xds:///' + target, grpc.credentials.createInsecure());

const seen = new Set();
let window = null;  // {left, counts} while a window is being counted
process.on('SIGUSR2', () => { window = {left: 200, counts: {}}; });
process.on('SIGTERM', () => process.exit(0));

function call(over = client) {
  return new Promise((resolve) => {
    over.UnaryCall({}, new grpc.Metadata(), {deadline: Date.now() + 2000},
                   (err, response) => resolve(err ? err : response.hostname));
  });
}

async function main() {
  // Until the first answer the channel is still resolving: wait for ready on that one only.
  await new Promise((resolve) => client.waitForReady(Date.now() + 20000, resolve));
  if (probeTarget) {
    const probe = new TestService('xds:///' + probeTarget, grpc.credentials.createInsecure());
    const result = await call(probe);
    console.log('probe', typeof result === 'string' ? result : result.code);
  }
  for (;;) {
    const who = await call();
    if (typeof who !== 'string') {
      console.log('fail', who.code, JSON.stringify(who.details));
      continue;
    }
    if (!seen.has(who)) {
      seen.add(who);
      console.log('first', who, process.hrtime.bigint().toString());
    }
    if (window) {
      window.counts[who] = (window.counts[who] || 0) + 1;
      if (--window.left === 0) {
        console.log('window', JSON.stringify(window.counts));
        window = null;
      }
    }
  }
}
main();
