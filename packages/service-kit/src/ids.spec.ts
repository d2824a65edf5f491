import { create, toBinary } from '@bufbuild/protobuf';
import { common, fieldNumber, preranking, WIRE } from '@recsys/contracts';
import { CandidateList, readCandidateRequest } from './candidate-wire.js';
import { InvalidArgumentError } from './errors.js';
import { type CandidateIds, checkCandidateIds, idProblem } from './ids.js';

/** The ids as a stage reads them: candidates of a request's bytes (with a score after each id, as stages send them). */
function requestOf(ids: readonly string[]): CandidateList {
  const candidates = ids.map((itemId, k) => create(common.CandidateSchema, { itemId, score: k, channels: ['popular'] }));
  const bytes = toBinary(preranking.PrerankRequestSchema, create(preranking.PrerankRequestSchema, { userId: 'u', candidates }));
  return readCandidateRequest(preranking.PrerankRequestSchema, bytes).candidates;
}

/** Candidates whose item_id holds these bytes (a malformed UTF-8 sequence among them), their ids found when first asked for. */
function rawList(ids: readonly Uint8Array[]): CandidateList {
  const itemIdTag = (fieldNumber(common.CandidateSchema, 'itemId') << 3) | WIRE.length;
  return CandidateList.fromSpans(ids.map((id) => Uint8Array.of(itemIdTag, id.length, ...id)));
}

/** checkCandidateIds over a request's bytes: the ids it returns, as strings. */
const checked = (ids: readonly string[], limits: { maxCandidates: number; maxIdLength: number }) =>
  idsOf(checkCandidateIds(requestOf(ids), limits));

/** Every checked id as a string. */
const idsOf = (checkedIds: CandidateIds) => Array.from({ length: checkedIds.length }, (_, k) => checkedIds.id(k));

describe('idProblem', () => {
  it('accepts printable ids, ASCII or not', () => {
    for (const id of ['item-1', ' ', '~', 'a b', 'élément', 'ラ', 'emoji-😀', 'x'.repeat(64)]) expect(idProblem(id, 64)).toBeUndefined();
  });

  it('refuses empty and long ids, control characters anywhere and lone surrogates, saying why', () => {
    expect(idProblem('', 64)).toBe('must not be empty');
    expect(idProblem('x'.repeat(65), 64)).toBe('must be at most 64 characters (got 65)');
    for (const id of ['\u0000', 'a\u0000', 'a\u001fb', 'a\u007f', 'é\u0001', '\n', 'ok\t']) {
      expect(idProblem(id, 64)).toBe('must not contain control characters');
    }
    for (const id of ['\ud800', 'a\udc00', '\ud83d', 'é\ud800x'])
      expect(idProblem(id, 64)).toBe('must be valid Unicode (it holds a lone surrogate)');
  });
});

describe('checkCandidateIds', () => {
  const limits = { maxCandidates: 3, maxIdLength: 8 };

  it('returns the ids in order', () => {
    expect(checked(['a', 'ü', 'c'], limits)).toEqual(['a', 'ü', 'c']);
  });

  it('names the candidate and the problem: none, too many, a bad id, a repeat', () => {
    const refusal = (ids: string[]) => {
      try {
        checkCandidateIds(requestOf(ids), limits);
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(refusal([])).toMatch(/candidates.*must not be empty/);
    expect(refusal(['a', 'b', 'c', 'd'])).toMatch(/at most 3 per request \(got 4\)/);
    expect(refusal(['a', 'b\u0000'])).toMatch(/candidates\[1\]\.item_id.*control characters/);
    expect(refusal(['a', 'x'.repeat(9)])).toMatch(/candidates\[1\]\.item_id.*at most 8 characters/);
    expect(refusal(['a', 'b', 'a'])).toMatch(/candidates\[2\]\.item_id.*"a" repeats candidates\[0\]/);
    // The first refusal in order, whichever kind it is.
    expect(refusal(['a', 'a', ''])).toMatch(/candidates\[1\]\.item_id.*"a" repeats candidates\[0\]/);
    expect(refusal(['a', '', 'a'])).toMatch(/candidates\[1\]\.item_id.*must not be empty/);
  });

  it('finds a repeat among thousands of ids, after a longer and a shorter list (its table is reused)', () => {
    const many = { maxCandidates: 5000, maxIdLength: 64 };
    const ids = Array.from({ length: 3000 }, (_, k) => `item-${k}`);
    expect(checked(ids, many)).toEqual(ids);
    expect(() => checked([...ids, 'item-1234'], many)).toThrow('candidates[3000].item_id: "item-1234" repeats candidates[1234]');
    expect(() => checked(['x', 'y', 'z', 'y'], many)).toThrow('candidates[3].item_id: "y" repeats candidates[1]');
    expect(checked(['x', 'y', 'z'], many)).toEqual(['x', 'y', 'z']);
    // Every pair of a shuffled list with one repeat: the earlier one named, wherever it lies.
    for (const [first, second] of [
      [0, 2999],
      [1500, 1501],
      [2998, 2999],
    ] as const) {
      const withRepeat = ids.slice();
      withRepeat[second] = withRepeat[first]!;
      expect(() => checked(withRepeat, many)).toThrow(`candidates[${second}].item_id: "item-${first}" repeats candidates[${first}]`);
    }
  });

  it('reads the ids from the bytes: non-ASCII ids, malformed UTF-8 and repeated item_id fields as protobuf reads them', () => {
    const limits = { maxCandidates: 10, maxIdLength: 8 };
    expect(() => checked(['ü', 'a', 'ü'], limits)).toThrow('candidates[2].item_id: "ü" repeats candidates[0]');
    expect(checked(['é', 'e', 'ë', 'emoji-😀'], limits)).toEqual(['é', 'e', 'ë', 'emoji-😀']);
    // Two malformed sequences decode to the same string ("a\ufffd"): the same id, as the stage would look it up.
    const bad = rawList([Uint8Array.of(0x61, 0xff), Uint8Array.of(0x62), Uint8Array.of(0x61, 0xfe)]);
    expect(() => checkCandidateIds(bad, limits)).toThrow('candidates[2].item_id: "a\ufffd" repeats candidates[0]');
    // A candidate whose item_id comes twice is the last one (protobuf's rule); one without any has an empty id.
    const itemIdTag = (fieldNumber(common.CandidateSchema, 'itemId') << 3) | WIRE.length;
    const twice = Uint8Array.of(itemIdTag, 1, 0x78, itemIdTag, 1, 0x79);
    const scoreOnly = Uint8Array.of((fieldNumber(common.CandidateSchema, 'score') << 3) | WIRE.fixed32, 0, 0, 0x80, 0x3f);
    const head = toBinary(preranking.PrerankRequestSchema, create(preranking.PrerankRequestSchema, { userId: 'u' }));
    const candidateTag = (fieldNumber(preranking.PrerankRequestSchema, 'candidates') << 3) | WIRE.length;
    const bytes = Uint8Array.from([...head, candidateTag, twice.length, ...twice, candidateTag, scoreOnly.length, ...scoreOnly]);
    const list = readCandidateRequest(preranking.PrerankRequestSchema, bytes).candidates;
    expect(list.ids).toEqual(['y', '']);
    expect(() => checkCandidateIds(list, limits)).toThrow('candidates[1].item_id: must not be empty');
    expect(idsOf(checkCandidateIds(list.slice(1), limits))).toEqual(['y']);
  });

  it('gives each id the hash an IdTable keeps (FNV-1a over UTF-16 code units), and lists read any way the same ids', () => {
    const ids = ['item-1', 'ü', 'emoji-😀', 'x y', '~'];
    const fnv = (id: string) => {
      let hash = 0x811c9dc5;
      for (let k = 0; k < id.length; k++) hash = Math.imul(hash ^ id.charCodeAt(k), 0x01000193);
      return hash | 0;
    };
    const limits = { maxCandidates: 10, maxIdLength: 16 };
    for (const list of [
      requestOf(ids),
      CandidateList.of(ids.map((itemId) => create(common.CandidateSchema, { itemId }))),
      rawList(ids.map((id) => Buffer.from(id))),
    ]) {
      const checkedIds = checkCandidateIds(list, limits);
      expect(checkedIds.length).toBe(ids.length);
      expect(Array.from(checkedIds.hashes)).toEqual(ids.map(fnv));
      expect(ids.map((_, k) => checkedIds.id(k))).toEqual(ids);
      expect(
        ids.map((_, k) => Buffer.from(checkedIds.bytes.subarray(checkedIds.bounds[2 * k], checkedIds.bounds[2 * k + 1])).toString()),
      ).toEqual(ids);
    }
  });
});
