import { InvalidArgumentError } from './errors.js';
import { checkCandidateIds, idProblem } from './ids.js';

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
    expect(checkCandidateIds(['a', 'ü', 'c'], limits)).toEqual(['a', 'ü', 'c']);
  });

  it('names the candidate and the problem: none, too many, a bad id, a repeat', () => {
    const refusal = (ids: string[]) => {
      try {
        checkCandidateIds(ids, limits);
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
    expect(checkCandidateIds(ids, many)).toEqual(ids);
    expect(() => checkCandidateIds([...ids, 'item-1234'], many)).toThrow('candidates[3000].item_id: "item-1234" repeats candidates[1234]');
    expect(() => checkCandidateIds(['x', 'y', 'z', 'y'], many)).toThrow('candidates[3].item_id: "y" repeats candidates[1]');
    expect(checkCandidateIds(['x', 'y', 'z'], many)).toEqual(['x', 'y', 'z']);
    // Every pair of a shuffled list with one repeat: the earlier one named, wherever it lies.
    for (const [first, second] of [
      [0, 2999],
      [1500, 1501],
      [2998, 2999],
    ] as const) {
      const withRepeat = ids.slice();
      withRepeat[second] = withRepeat[first]!;
      expect(() => checkCandidateIds(withRepeat, many)).toThrow(
        `candidates[${second}].item_id: "item-${first}" repeats candidates[${first}]`,
      );
    }
  });
});
