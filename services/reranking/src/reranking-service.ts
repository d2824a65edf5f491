import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { common, reranking } from '@recsys/contracts';
import {
  type CandidateFields,
  checkIdField,
  checkTimestampField,
  EncodedMessage,
  hasStageScore,
  InvalidArgumentError,
  readCandidateFields,
  readCandidateRequest,
  type CandidateEdit,
  encodeCandidateField,
} from '@recsys/service-kit';
import type { RuleEngine } from './rule-engine.js';
import type { Entry, RecentItem } from './rules/rule.js';

export interface RequestLimits {
  defaultLimit: number;
  maxLimit: number;
  maxCandidates: number;
  maxIdLength: number;
}

/** What an entry came from: the candidate's bytes and the fields read from them (absent for an entry a rule made). */
interface Origin {
  span: Uint8Array;
  fields: CandidateFields;
}

/** The re-ranking call's logic: validation, de-duplication, the rules, the answer; transport-free. */
export class RerankingService {
  constructor(
    private readonly engine: RuleEngine,
    private readonly limits: RequestLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A RerankRequest as its bytes: each candidate's fields are read from its bytes, and the answer copies the bytes of
   * every candidate kept, appending what the rules changed (score, merged channels, a category read) and the
   * re-ranking score; no candidate list is decoded or re-encoded.
   */
  async rerank(bytes: Uint8Array): Promise<EncodedMessage<typeof reranking.RerankResponseSchema>> {
    const { message: request, candidates: list } = readCandidateRequest(reranking.RerankRequestSchema, bytes);
    const candidates = Array.from({ length: list.length }, (_, i) => readCandidateFields(list.span(i), list.ids[i]));
    const { limit, recentItems, disabled } = this.validate(request, candidates);
    const { entries, sources, duplicates } = dedupe(candidates);
    // Each entry's candidate (its first occurrence), by index.
    const origins = new Map<Entry, number>();
    entries.forEach((entry, k) => origins.set(entry, sources[k]!));
    const requestTime = Number(request.context?.requestTimeMs ?? 0n);
    const { list: outcome, reports } = await this.engine.run({
      userId: request.userId,
      nowMs: requestTime > 0 ? requestTime : this.now(),
      limit,
      recentItems,
      candidates: entries,
      disabled,
      passedUser: request,
    });
    if (duplicates.length > 0) {
      reports.unshift({
        rule: 'dedupe',
        removedItemIds: duplicates,
        changedItemIds: [],
        detail: `${duplicates.length} repeated candidates removed (the first occurrence kept, channels merged)`,
        durationMs: 0,
        error: '',
      });
    }
    const answer = outcome.slice(0, limit).map((entry) => {
      const i = origins.get(entry);
      return toAnswer(entry, i === undefined ? undefined : { span: list.span(i), fields: candidates[i]! });
    });
    const rest = toBinary(reranking.RerankResponseSchema, create(reranking.RerankResponseSchema, { rules: reports }));
    return new EncodedMessage(
      reranking.RerankResponseSchema,
      Buffer.concat([encodeCandidateField(reranking.RerankResponseSchema, answer), rest]),
    );
  }

  private validate(
    request: reranking.RerankRequest,
    candidates: readonly CandidateFields[],
  ): { limit: number; recentItems: RecentItem[]; disabled: Set<string> } {
    const { maxLimit, maxCandidates, maxIdLength, defaultLimit } = this.limits;
    checkIdField('user_id', request.userId, maxIdLength);
    if (request.limit > maxLimit) throw new InvalidArgumentError('limit', `must be at most ${maxLimit} (0 or less means ${defaultLimit})`);
    if (candidates.length > maxCandidates) {
      throw new InvalidArgumentError('candidates', `at most ${maxCandidates} per call (got ${candidates.length})`);
    }
    candidates.forEach((candidate, i) => {
      checkIdField(`candidates[${i}].item_id`, candidate.itemId, maxIdLength);
      if (!Number.isFinite(candidate.score)) throw new InvalidArgumentError(`candidates[${i}].score`, 'must be a finite number');
    });
    // The rules date the request by it (shuffle's daily seed, boost_new's age): a time no Date holds would fail them.
    checkTimestampField('context.request_time_ms', request.context?.requestTimeMs ?? 0n);
    const recent = request.context?.recentItems ?? [];
    if (recent.length > maxCandidates) {
      throw new InvalidArgumentError('context.recent_items', `at most ${maxCandidates} per call (got ${recent.length})`);
    }
    recent.forEach((item, i) => checkIdField(`context.recent_items[${i}].item_id`, item.itemId, maxIdLength));
    request.disabledRules.forEach((name, i) => {
      if (!this.engine.isKnownName(name)) {
        const names = [...new Set(this.engine.rules.map((rule) => rule.name))].join(', ');
        throw new InvalidArgumentError(
          `disabled_rules[${i}]`,
          `unknown rule "${name}"; configured rules are ${names || '(none)'}, or a rule type`,
        );
      }
    });
    return {
      limit: request.limit > 0 ? request.limit : defaultLimit,
      recentItems: recent.map((item) => ({ itemId: item.itemId, eventType: item.eventType })),
      disabled: new Set(request.disabledRules),
    };
  }
}

/** A candidate as re-ranking reads it (from its bytes, or a decoded Candidate). */
type CandidateLike = Pick<CandidateFields, 'itemId' | 'score' | 'category' | 'channels' | 'stageScores'> & { createdAtMs: number | bigint };

/**
 * One entry per item id (in the order of their first occurrence): the first (best-placed) one, with the channels of its
 * repeats, and the index of the candidate it came from (`sources`). An entry shares its candidate's channel and
 * stage-score arrays (no rule changes them) until a repeat adds a channel: its channels are then a copy, the
 * candidate's left as read.
 */
export function dedupe(candidates: readonly CandidateLike[]): { entries: Entry[]; sources: number[]; duplicates: string[] } {
  const entryOf = new Map<string, number>();
  const entries: Entry[] = [];
  const sources: number[] = [];
  const duplicates = new Set<string>();
  candidates.forEach((candidate, i) => {
    const k = entryOf.get(candidate.itemId);
    if (k === undefined) {
      entryOf.set(candidate.itemId, entries.length);
      sources.push(i);
      entries.push({
        itemId: candidate.itemId,
        score: candidate.score,
        category: candidate.category,
        createdAtMs: Number(candidate.createdAtMs),
        channels: candidate.channels,
        stageScores: candidate.stageScores,
      });
      return;
    }
    duplicates.add(candidate.itemId);
    const first = entries[k]!;
    for (const channel of candidate.channels) {
      if (first.channels.includes(channel)) continue;
      if (first.channels === candidates[sources[k]!]!.channels) first.channels = [...first.channels];
      first.channels.push(channel);
    }
  });
  return { entries, sources, duplicates: [...duplicates] };
}

/**
 * An answer's candidate: the bytes it came in with what changed appended (score, channels merged from repeats, a
 * category or creation time a rule set) and the re-ranking score; rewritten whole only when it carries a re-ranking
 * score already (a candidate re-ranked twice keeps one) or a rule made it (pin).
 */
function toAnswer(entry: Entry, origin: Origin | undefined): CandidateEdit | Uint8Array {
  const createdAtMs = Math.max(0, Math.round(entry.createdAtMs));
  if (origin !== undefined && !hasStageScore(origin.span, common.Stage.RERANKING)) {
    const { fields, span } = origin;
    return {
      span,
      score: entry.score,
      stage: common.Stage.RERANKING,
      addChannels: entry.channels.length > fields.channels.length ? entry.channels.slice(fields.channels.length) : undefined,
      category: entry.category !== fields.category ? entry.category : undefined,
      createdAtMs: createdAtMs !== fields.createdAtMs ? createdAtMs : undefined,
    };
  }
  const candidate = create(common.CandidateSchema, toCandidate(entry));
  // A candidate that came in keeps the fields this build does not know.
  if (origin !== undefined) candidate.$unknown = fromBinary(common.CandidateSchema, origin.span).$unknown;
  return toBinary(common.CandidateSchema, candidate);
}

function toCandidate(entry: Entry): MessageInitShape<typeof common.CandidateSchema> {
  return {
    itemId: entry.itemId,
    score: entry.score,
    channels: entry.channels,
    category: entry.category,
    createdAtMs: BigInt(Math.max(0, Math.round(entry.createdAtMs))),
    // A candidate re-ranked twice keeps one re-ranking score.
    stageScores: [
      ...entry.stageScores.filter((s) => s.stage !== common.Stage.RERANKING),
      { stage: common.Stage.RERANKING, score: entry.score },
    ],
  };
}
