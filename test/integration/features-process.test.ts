import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { features } from '@recsys/contracts';
import { createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { builtEntry, runNode, startNode } from '@recsys/testing';

const main = () => builtEntry('services/features/dist/main.js');
const cli = () => builtEntry('services/features/dist/cli.js');

describe('feature service as a process', () => {
  it('exits at start-up naming the first invalid variable', async () => {
    const result = await runNode(main(), [], { REDIS_URL: 'http://nope', GRPC_PORT: '0' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('invalid configuration: REDIS_URL: must be a redis:// or rediss:// URL');

    const port = await runNode(main(), [], { GRPC_PORT: 'seventy' });
    expect(port.code).toBe(2);
    expect(port.stderr).toContain('GRPC_PORT');
  });

  it('serves, bulk-loads files through the CLI with rejected rows reported, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const service = startNode(main(), { GRPC_PORT: String(port), REDIS_URL: process.env.REDIS_TEST_URL!, REDIS_KEY_PREFIX: `cli${port}:` });
    const client = createServiceClient(features.FeatureService, address, { defaultTimeoutMs: 5000 });
    try {
      await waitForServing(address, 15000);
      const dir = mkdtempSync(join(tmpdir(), 'recsys-load-'));
      const users = join(dir, 'users.jsonl');
      writeFileSync(
        users,
        [
          '{"user_id": "u1", "features": {"age": 31, "genres": ["drama", "jazz"]}}',
          '{"user_id": "u2", "features": {"age": "n/a"}}',
          '{not json',
          '{"features": {"age": 3}}',
          '',
          '{"user_id": "u3", "features": {"emb": [0.5, 1.5]}}',
        ].join('\n'),
      );
      const items = join(dir, 'items.csv');
      writeFileSync(
        items,
        [
          'item_id,category,created_at,price:num,tags:multi',
          'i1,books,2026-01-02T00:00:00Z,9.5,a|b',
          'i2,music,,oops,',
          '"i,3",books,1700000000000,1,',
        ].join('\n'),
      );
      const rejects = join(dir, 'rejects.jsonl');
      const result = await runNode(cli(), [
        'load',
        '--users',
        users,
        '--items',
        items,
        '--address',
        address,
        '--batch',
        '2',
        '--rejects',
        rejects,
      ]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('users: 3 stored, 2 rejected');
      expect(result.stdout).toContain('line 3: malformed JSON');
      expect(result.stdout).toContain('line 4: user_id: missing');
      expect(result.stdout).toContain('items: 2 stored, 1 rejected');
      expect(result.stdout).toContain('line 2 (i2): price: "oops" is not a number');
      expect(readFileSync(rejects, 'utf8').trim().split('\n')).toHaveLength(3);
      const badBatch = await runNode(cli(), ['load', '--users', users, '--address', address, '--batch', '0']);
      expect(badBatch.code).toBe(2);
      expect(badBatch.stderr).toContain('--batch: expected a whole number >= 1, got "0"');

      const read = await client.batchGetItemFeatures({ itemIds: ['i1', 'i,3', 'i2'] });
      expect(read.items.map((r) => r.found)).toEqual([true, true, false]);
      expect(read.items[0]!.item).toMatchObject({ category: 'books', createdAtMs: BigInt(Date.parse('2026-01-02T00:00:00Z')) });
      expect(read.items[0]!.item!.features?.values.tags?.kind.value).toMatchObject({ values: ['a', 'b'] });
      const u2 = await client.getUserFeatures({ userId: 'u2' });
      expect(u2.user?.features?.values.age?.kind).toEqual({ case: 'categorical', value: 'n/a' });

      service.child.kill('SIGTERM');
      const exit = await service.exited;
      expect(exit.code).toBe(0);
      expect(exit.stdout).toContain('features service stopped');
    } finally {
      client.close();
      service.child.kill('SIGKILL');
    }
  });
});
