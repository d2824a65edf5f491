import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { common, features } from '@recsys/contracts';

/**
 * The event log the feature store keeps beside the features: served answers (impressions) and applied
 * feedback, in write order, bounded by a retention. On Redis it is one stream (XADD with an exact MINID trim,
 * so nothing older than the retention is kept); ids are the stream's, "<ms>-<seq>".
 */

/** The versions and the position an answered impression gave a feedback event (online metrics per version). */
export interface Attribution {
  versions: features.ServedVersions;
  /** 0-based position of the event's item in the answer. */
  position: number;
}

export interface EventLogPage {
  /** EventLogEntry messages (id set), as protobuf bytes. */
  entries: features.EventLogEntry[];
  /** After this id the next page starts; '' when the range is exhausted. */
  nextId: string;
}

export interface EventLogRange {
  /** Unix ms, inclusive; 0: from the oldest entry kept. */
  sinceMs: number;
  /** Unix ms, inclusive; 0: up to the newest. */
  untilMs: number;
  /** Continue after this entry id; '' for the first page. */
  afterId: string;
  limit: number;
}

/** A log entry without its id, as stored (the id is the stream's). */
export function encodeLogEntry(event: features.EventLogEntry['event']): Uint8Array {
  return toBinary(features.EventLogEntrySchema, create(features.EventLogEntrySchema, { event }));
}

export function decodeLogEntry(id: string, bytes: Uint8Array): features.EventLogEntry {
  const entry = fromBinary(features.EventLogEntrySchema, bytes);
  entry.id = id;
  return entry;
}

/** Stream ids compare as (ms, seq). */
export function parseLogId(id: string): [number, number] | undefined {
  const match = /^(\d+)-(\d+)$/.exec(id);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

export function compareLogIds(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

/** The hash fields that remember an impression for attribution: versions, and each item's position. */
export const ATTRIBUTION_VERSIONS_FIELD = 'v';
export const positionField = (itemId: string): string => `p:${itemId}`;
export const attributedField = (eventType: number, itemId: string): string => `a:${eventType}:${itemId}`;

export function encodeVersions(versions: features.ServedVersions | undefined): Uint8Array {
  return toBinary(features.ServedVersionsSchema, versions ?? create(features.ServedVersionsSchema));
}

export function decodeVersions(bytes: Uint8Array): features.ServedVersions {
  return fromBinary(features.ServedVersionsSchema, bytes);
}

/** Feedback with a request id is attributed to that answer's impression; impressions themselves are not feedback. */
export function attributable(event: common.FeedbackEvent): boolean {
  return event.requestId !== '' && event.eventType !== common.EventType.IMPRESSION;
}

/**
 * Redis: attributes one feedback event to the impression its request id names, once per (event type, item).
 * KEYS: the impression's hash. ARGV: item id, event type. Returns {versions, position} or nil.
 */
export const ATTRIBUTE_LUA = `
local pos = redis.call('HGET', KEYS[1], '${positionField('')}' .. ARGV[1])
if not pos then return false end
if redis.call('HSETNX', KEYS[1], 'a:' .. ARGV[2] .. ':' .. ARGV[1], '1') == 0 then return false end
return {redis.call('HGET', KEYS[1], '${ATTRIBUTION_VERSIONS_FIELD}'), pos}
`;
