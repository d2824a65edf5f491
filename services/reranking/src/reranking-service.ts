import type { MessageInitShape } from '@bufbuild/protobuf';
import { common, type reranking } from '@recsys/contracts';
import { InvalidArgumentError } from '@recsys/service-kit';
import type { RuleEngine } from './rule-engine.js';
import type { Entry, RecentItem } from './rules/rule.js';

export interface RequestLimits {
  defaultLimit: number;
  maxLimit: number;
  maxCandidates: number;
  maxIdLength: number;
}

type RerankResponseInit = MessageInitShape<typeof reranking.RerankResponseSchema>;

/** The re-ranking call's logic: validation, de-duplication, the rules, the answer; transport-free. */
export class RerankingService {
  constructor(
    private readonly engine: RuleEngine,
    private readonly limits: RequestLimits,
    private readonly now: () => number = Date.now,
  ) {}

  async rerank(request: reranking.RerankRequest): Promise<RerankResponseInit> {
    const { limit, recentItems, disabled } = this.validate(request);
    const { entries, duplicates } = dedupe(request.candidates);
    const requestTime = Number(request.context?.requestTimeMs ?? 0n);
    const { list, reports } = await this.engine.run({
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
    return { candidates: list.slice(0, limit).map(toCandidate), rules: reports };
  }

  private validate(request: reranking.RerankRequest): { limit: number; recentItems: RecentItem[]; disabled: Set<string> } {
    const { maxLimit, maxCandidates, maxIdLength, defaultLimit } = this.limits;
    checkId('user_id', request.userId, maxIdLength);
    if (request.limit > maxLimit) throw new InvalidArgumentError('limit', `must be at most ${maxLimit} (0 or less means ${defaultLimit})`);
    if (request.candidates.length > maxCandidates) {
      throw new InvalidArgumentError('candidates', `at most ${maxCandidates} per call (got ${request.candidates.length})`);
    }
    request.candidates.forEach((candidate, i) => {
      checkId(`candidates[${i}].item_id`, candidate.itemId, maxIdLength);
      if (!Number.isFinite(candidate.score)) throw new InvalidArgumentError(`candidates[${i}].score`, 'must be a finite number');
    });
    const recent = request.context?.recentItems ?? [];
    if (recent.length > maxCandidates) {
      throw new InvalidArgumentError('context.recent_items', `at most ${maxCandidates} per call (got ${recent.length})`);
    }
    recent.forEach((item, i) => checkId(`context.recent_items[${i}].item_id`, item.itemId, maxIdLength));
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

function checkId(field: string, id: string, maxLength: number): void {
  if (id.length === 0) throw new InvalidArgumentError(field, 'must not be empty');
  if (id.length > maxLength) throw new InvalidArgumentError(field, `must be at most ${maxLength} characters (got ${id.length})`);
  // Control characters would corrupt keys and logs; ids are opaque but printable.
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new InvalidArgumentError(field, 'must not contain control characters');
}

/** One entry per item id: the first (best-placed) occurrence, with the channels of its repeats. */
export function dedupe(candidates: readonly common.Candidate[]): { entries: Entry[]; duplicates: string[] } {
  const byId = new Map<string, Entry>();
  const duplicates = new Set<string>();
  for (const candidate of candidates) {
    const first = byId.get(candidate.itemId);
    if (first) {
      duplicates.add(candidate.itemId);
      for (const channel of candidate.channels) if (!first.channels.includes(channel)) first.channels.push(channel);
      continue;
    }
    byId.set(candidate.itemId, {
      itemId: candidate.itemId,
      score: candidate.score,
      category: candidate.category,
      createdAtMs: Number(candidate.createdAtMs),
      channels: [...candidate.channels],
      stageScores: candidate.stageScores.map((s) => ({ stage: s.stage, score: s.score })),
    });
  }
  return { entries: [...byId.values()], duplicates: [...duplicates] };
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
