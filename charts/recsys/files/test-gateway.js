// `helm test`: asks the gateway for recommendations the way a client does (REST, with the first API key of
// the mounted Secret) and fails unless it answers 200 with items.
// Usage: node -e "$(cat test-gateway.js)" GATEWAY_URL USER_ID [API_KEYS_DIR]
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

async function main() {
  const [base, userId, keysDir] = process.argv.slice(1);
  const headers = { 'content-type': 'application/json' };
  if (keysDir) {
    const name = readdirSync(keysDir)
      .filter((entry) => !entry.startsWith('.'))
      .sort()[0];
    if (!name) throw new Error(`no API key in ${keysDir}`);
    headers.authorization = `Bearer ${readFileSync(join(keysDir, name), 'utf8').trim()}`;
  }
  const response = await fetch(`${base}/v1/recommendations`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ user_id: userId, k: 10 }),
    signal: AbortSignal.timeout(10000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`POST ${base}/v1/recommendations: HTTP ${response.status}: ${text}`);
  const answer = JSON.parse(text);
  if (!Array.isArray(answer.items) || answer.items.length === 0) throw new Error(`no items in the answer: ${text}`);
  const degraded = (answer.degradations ?? []).map((d) => `${d.stage}: ${d.cause}`);
  console.log(
    `${answer.items.length} items for ${userId} in ${answer.total_ms} ms${degraded.length ? `; degraded: ${degraded.join(', ')}` : ''}`,
  );
}

main().catch((error) => {
  console.error(`helm test: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
