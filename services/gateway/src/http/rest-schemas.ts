import { create, toJson, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { common, gateway } from '@recsys/contracts';
import { InvalidArgumentError } from '@recsys/service-kit';
import { z } from 'zod';

/*
 * The REST bodies in snake_case JSON. These schemas check types and shape only (strict: unknown fields are an
 * error); the limits (id lengths, k, list sizes) are checked by the shared validation in ../validation.ts,
 * which GatewayApi applies to both transports.
 */

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * int64 as a JSON number (a safe integer) or a decimal string, as protobuf's JSON mapping allows; at most 20
 * digits, since BigInt() of a body-sized digit string would be slow.
 */
const int64 = z
  .union([z.int(), z.string().regex(/^-?\d{1,20}$/, 'must be an integer')])
  .transform((v) => BigInt(v))
  .refine((v) => v >= INT64_MIN && v <= INT64_MAX, 'must fit in 64 bits')
  .meta({ description: 'Integer (JSON number or decimal string)' });

const eventTypeValues = common.EventTypeSchema.values;
/** Accepted event type names: lower-case short ("view", "add_to_cart") or the enum's full name ("EVENT_TYPE_VIEW"). */
export const EVENT_TYPE_NAMES = [...eventTypeValues.map((v) => v.localName.toLowerCase()), ...eventTypeValues.map((v) => v.name)];
const eventTypeByName = new Map<string, common.EventType>(
  eventTypeValues.flatMap((v) => [
    [v.localName.toLowerCase(), v.number],
    [v.name, v.number],
  ]),
);
const eventType = z
  .enum(EVENT_TYPE_NAMES as [string, ...string[]])
  .transform((name) => eventTypeByName.get(name)!)
  .meta({ description: 'What the user did: "view", "click", ... or the full name "EVENT_TYPE_VIEW"' });

const id = z.string();
const idList = z.array(id);

export const contextItemBody = z.strictObject({
  item_id: id,
  timestamp_ms: int64.optional().meta({ description: 'Unix ms; 0 or absent when unknown' }),
  dwell_seconds: z.number().optional(),
  event_type: eventType.optional(),
});

export const userContextBody = z.strictObject({
  recent_items: z.array(contextItemBody).optional().meta({ description: 'Most recent first' }),
  attributes: z.record(z.string(), z.string()).optional().meta({ description: 'Free-form request attributes (device, locale, surface)' }),
  request_time_ms: int64.optional(),
});

export const itemFilterBody = z.strictObject({
  include_categories: idList.optional().meta({ description: 'When not empty, only items of these categories' }),
  exclude_categories: idList.optional(),
  exclude_item_ids: idList.optional(),
});

export const recommendBody = z.strictObject({
  user_id: id,
  context: userContextBody.optional(),
  k: z.int32().optional().meta({ description: 'How many items; 0 or absent means the configured default' }),
  filter: itemFilterBody.optional(),
  budget_ms: z
    .int32()
    .optional()
    .meta({ description: 'Latency budget in ms; 0 or absent means the default; clamped to the configured bounds' }),
  debug: z.boolean().optional().meta({ description: "Return every stage's candidates, timings and rule reports" }),
  funnel: z
    .strictObject({
      retrieved: z.int32().optional().meta({ description: 'Candidates retrieval returns; at most RETRIEVE_MAX' }),
      pre_ranked: z.int32().optional().meta({ description: 'Candidates pre-ranking keeps; at most RANK_MAX' }),
      ranked: z.int32().optional().meta({ description: 'Candidates ranking keeps for re-ranking; at least k, at most RANK_MAX' }),
    })
    .optional()
    .meta({ description: "This request's funnel sizes; an absent or 0 field takes the gateway's own (adaptive) count" }),
});

export const feedbackEventBody = z.strictObject({
  event_id: id.optional().meta({ description: 'Unique id (a repeat is ignored as a duplicate); generated when absent' }),
  user_id: id,
  item_id: id,
  event_type: eventType,
  timestamp_ms: int64.optional().meta({ description: 'Unix ms; 0 or absent means when the service receives it' }),
  dwell_seconds: z.number().optional(),
  request_id: id.optional().meta({ description: 'The recommendation answer (request_id) the item came from' }),
});

export const feedbackBody = z.strictObject({ events: z.array(feedbackEventBody) });

/** Query values: a repeated parameter arrives as an array and is refused (lists are comma-separated). */
const queryInt = z
  .string()
  .regex(/^-?\d{1,10}$/, 'must be a 32-bit integer')
  .transform(Number)
  .pipe(z.int32());
const queryList = z
  .string()
  .transform((s) => (s === '' ? [] : s.split(',')))
  .meta({ description: 'Comma-separated values' });
const queryBool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .meta({ description: 'true/false (or 1/0)' });

const filterQuery = {
  include_categories: queryList.optional(),
  exclude_categories: queryList.optional(),
  exclude_item_ids: queryList.optional(),
};

/** `GET /v1/recommendations`: the common case of a recommendation request in a URL. */
export const recommendQuery = z.strictObject({
  user_id: z.string(),
  k: queryInt.optional(),
  recent: queryList.optional().meta({ description: 'Recently seen item ids, most recent first, comma-separated' }),
  ...filterQuery,
  budget_ms: queryInt.optional(),
  debug: queryBool.optional(),
});

/** `GET /v1/items/{id}/similar`. */
export const similarQuery = z.strictObject({ k: queryInt.optional(), ...filterQuery });

/** `context.recent_items[3].item_id`: the snake_case proto path the shared validation uses too. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value = input;
  for (const part of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

/** Parses `input` or throws InvalidArgumentError naming the first bad field (`where` names the whole input). */
export function parseRest<S extends z.ZodType>(schema: S, input: unknown, where = 'body'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const field = fieldPath([...issue.path, issue.keys[0]!]);
    const others = issue.keys.length > 1 ? ` (also ${issue.keys.slice(1).join(', ')})` : '';
    throw new InvalidArgumentError(field, `unknown field${others}`);
  }
  const field = fieldPath(issue.path) || where;
  const missing = issue.path.length > 0 && valueAt(input, issue.path) === undefined;
  throw new InvalidArgumentError(field, missing ? 'is required' : issue.message);
}

type FilterInput = z.output<typeof itemFilterBody> | undefined;

function toFilter(filter: FilterInput): common.ItemFilter | undefined {
  if (!filter) return undefined;
  return create(common.ItemFilterSchema, {
    includeCategories: filter.include_categories ?? [],
    excludeCategories: filter.exclude_categories ?? [],
    excludeItemIds: filter.exclude_item_ids ?? [],
  });
}

function filterOf(q: { include_categories?: string[]; exclude_categories?: string[]; exclude_item_ids?: string[] }): FilterInput {
  if (!q.include_categories && !q.exclude_categories && !q.exclude_item_ids) return undefined;
  return q;
}

export function recommendRequestFromBody(body: unknown): gateway.RecommendRequest {
  const b = parseRest(recommendBody, body);
  const context = b.context;
  return create(gateway.RecommendRequestSchema, {
    userId: b.user_id,
    context: context && {
      recentItems: (context.recent_items ?? []).map((item) => ({
        itemId: item.item_id,
        timestampMs: item.timestamp_ms ?? 0n,
        dwellSeconds: item.dwell_seconds ?? 0,
        eventType: item.event_type ?? common.EventType.UNSPECIFIED,
      })),
      attributes: context.attributes ?? {},
      requestTimeMs: context.request_time_ms ?? 0n,
    },
    k: b.k ?? 0,
    filter: toFilter(b.filter),
    budgetMs: b.budget_ms ?? 0,
    debug: b.debug ?? false,
    funnel: b.funnel && { retrieved: b.funnel.retrieved ?? 0, preRanked: b.funnel.pre_ranked ?? 0, ranked: b.funnel.ranked ?? 0 },
  });
}

export function recommendRequestFromQuery(query: unknown): gateway.RecommendRequest {
  const q = parseRest(recommendQuery, query, 'query');
  return create(gateway.RecommendRequestSchema, {
    userId: q.user_id,
    context: q.recent && { recentItems: q.recent.map((itemId) => ({ itemId })) },
    k: q.k ?? 0,
    filter: toFilter(filterOf(q)),
    budgetMs: q.budget_ms ?? 0,
    debug: q.debug ?? false,
  });
}

export function feedbackRequestFromBody(body: unknown): gateway.SendFeedbackRequest {
  const b = parseRest(feedbackBody, body);
  return create(gateway.SendFeedbackRequestSchema, {
    events: b.events.map((e) => ({
      eventId: e.event_id ?? '',
      userId: e.user_id,
      itemId: e.item_id,
      eventType: e.event_type,
      timestampMs: e.timestamp_ms ?? 0n,
      dwellSeconds: e.dwell_seconds ?? 0,
      requestId: e.request_id ?? '',
    })),
  });
}

export function similarRequestFromQuery(itemId: string, query: unknown): gateway.GetSimilarItemsRequest {
  const q = parseRest(similarQuery, query, 'query');
  return create(gateway.GetSimilarItemsRequestSchema, { itemId, k: q.k ?? 0, filter: toFilter(filterOf(q)) });
}

/**
 * A response as JSON: snake_case field names, every field present (empty lists, zeros), enums by their full
 * proto names ("STAGE_RANKING", "DEGRADATION_CAUSE_DEADLINE_EXCEEDED").
 */
export function responseJson<D extends DescMessage>(schema: D, message: MessageShape<D>) {
  return toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true });
}

// Response schemas: documentation of what responseJson writes (openapi.ts), and checked against real answers in the spec.
const enumNames = (values: ReadonlyArray<{ name: string }>) => z.enum(values.map((v) => v.name) as [string, ...string[]]);
const stageName = enumNames(common.StageSchema.values);
/** protobuf JSON writes non-finite floats as strings. */
const jsonFloat = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]);

export const recommendedItemJson = z.strictObject({
  item_id: z.string(),
  score: jsonFloat,
  category: z.string(),
  channels: z.array(z.string()).meta({ description: 'Retrieval channels that produced the item ("two_tower", "popular", ...)' }),
});

const stageTimingJson = z.strictObject({
  stage: stageName,
  duration_ms: jsonFloat,
  candidates_in: z.int(),
  candidates_out: z.int(),
});

const degradationJson = z.strictObject({
  stage: stageName,
  cause: enumNames(common.DegradationCauseSchema.values),
  detail: z.string(),
  fallback: z.string().meta({ description: 'What was used instead ("popular items", "retrieval order", ...)' }),
});

const candidateJson = z.strictObject({
  item_id: z.string(),
  score: jsonFloat,
  channels: z.array(z.string()),
  stage_scores: z.array(z.strictObject({ stage: stageName, score: jsonFloat })),
  category: z.string(),
  created_at_ms: z
    .string()
    .regex(/^-?\d+$/)
    .meta({ description: 'When the item entered the catalogue (Unix ms, an int64 as a string), as ranking read it; "0" when unknown' }),
});

const ruleReportJson = z.strictObject({
  rule: z.string(),
  removed_item_ids: z.array(z.string()),
  changed_item_ids: z.array(z.string()),
  detail: z.string(),
  duration_ms: jsonFloat,
  error: z.string(),
});

export const recommendResponseJson = z.strictObject({
  items: z.array(recommendedItemJson),
  request_id: z.string().meta({ description: 'Unique id of this answer; send it back as request_id in feedback' }),
  timings: z.array(stageTimingJson),
  degradations: z.array(degradationJson).meta({ description: 'Stages whose answer was replaced by a fallback; empty when all answered' }),
  total_ms: jsonFloat,
  debug: z
    .array(z.strictObject({ stage: stageName, candidates: z.array(candidateJson), rules: z.array(ruleReportJson) }))
    .meta({ description: 'Only when the request asked for debug' }),
});

export const feedbackResponseJson = z.strictObject({ accepted: z.int(), duplicates: z.int() });

export const similarResponseJson = z.strictObject({ items: z.array(recommendedItemJson) });

export const errorJson = z.strictObject({
  error: z.strictObject({
    code: z.string().meta({ description: 'INVALID_ARGUMENT, UNAUTHENTICATED, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL, ...' }),
    field: z.string().optional().meta({ description: 'INVALID_ARGUMENT only: the snake_case path of the bad field' }),
    message: z.string(),
  }),
});

export const healthJson = z.strictObject({ status: z.literal('ok') });
