// The artifacts init container: downloads a versioned bundle (a .tar.gz of models/ and indexes/), refuses it
// unless its sha256 is the expected one, and unpacks it into the artifacts directory.
// Usage: node -e "$(cat fetch-bundle.js)" URL SHA256 DIR
const { createHash } = require('node:crypto');
const { createWriteStream, rmSync } = require('node:fs');
const { once } = require('node:events');
const { Readable } = require('node:stream');
const { execFileSync } = require('node:child_process');
const { join } = require('node:path');

async function main() {
  const [url, expected, dest] = process.argv.slice(1);
  if (!url || !/^[0-9a-f]{64}$/.test(expected ?? '') || !dest) throw new Error('usage: URL SHA256 DIR');
  const file = join(dest, '.bundle.tar.gz');
  const response = await fetch(url);
  if (!response.ok || !response.body) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  let bytes = 0;
  for await (const chunk of Readable.fromWeb(response.body)) {
    hash.update(chunk);
    bytes += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const actual = hash.digest('hex');
  if (actual !== expected) {
    rmSync(file, { force: true });
    throw new Error(`sha256 of ${url} is ${actual}, expected ${expected}: refusing the bundle`);
  }
  execFileSync('tar', ['-xzf', file, '-C', dest, '--no-same-owner'], { stdio: 'inherit' });
  rmSync(file, { force: true });
  console.log(`bundle ${url} (${bytes} bytes, sha256 ${actual}) unpacked into ${dest}`);
}

main().catch((error) => {
  console.error(`fetch-bundle: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
