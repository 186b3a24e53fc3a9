// The floor the webhook benchmark measures `serve` against: the least any Node.js HTTPS webhook has to
// do with a review. Same TLS setup as `serve` (the same certificate files, TLS 1.2 at least), reads
// the body, parses it as JSON, and answers with a fixed body of the size `serve` answers with.
// No checks, no policy, no logging, no metrics: what is left between the two is what `serve` adds.
//
//   node floor-server.js <tls.crt> <tls.key> <response file>
// prints {"msg":"serving","port":N} on stdout once it listens on 127.0.0.1.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

const [certFile, keyFile, responseFile] = process.argv.slice(2);
if (!certFile || !keyFile || !responseFile)
  throw new Error('usage: floor-server <tls.crt> <tls.key> <response file>');
const response = readFileSync(responseFile);

const server = createServer(
  { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' },
  (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res
        .writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': response.length })
        .end(response);
    });
  },
);
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'serving', port: (server.address() as AddressInfo).port }));
});
process.on('SIGTERM', () => process.exit(0));
