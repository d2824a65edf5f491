// Fails when the committed generated code differs from a fresh `buf generate`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const committed = 'packages/contracts/src/gen';
const out = mkdtempSync(join(tmpdir(), 'recsys-gen-'));

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

try {
  execFileSync('buf', ['generate', '--output', out], { stdio: 'inherit' });
  const fresh = join(out, committed);
  const a = new Map(files(committed).map((f) => [relative(committed, f), readFileSync(f, 'utf8')]));
  const b = new Map(files(fresh).map((f) => [relative(fresh, f), readFileSync(f, 'utf8')]));
  const problems = [];
  for (const [name, text] of b) {
    if (!a.has(name)) problems.push(`missing from the commit: ${name}`);
    else if (a.get(name) !== text) problems.push(`differs from a fresh generation: ${name}`);
  }
  for (const name of a.keys()) if (!b.has(name)) problems.push(`not generated any more: ${name}`);
  if (problems.length > 0) {
    console.error(`Generated code is stale (run \`pnpm gen\`):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`generated code matches proto/ (${b.size} files)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
