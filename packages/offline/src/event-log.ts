import { common, type features } from '@recsys/contracts';

/** The feature-service calls the event tools need; the typed gRPC client satisfies it. */
export interface EventLogSource {
  readEventLog(request: { sinceMs: bigint; untilMs: bigint; afterId: string; limit: number }): Promise<features.ReadEventLogResponse>;
  listUsers(request: { cursor: string; limit: number }): Promise<features.ListUsersResponse>;
  scanItems(request: { cursor: string; limit: number }): Promise<features.ScanItemsResponse>;
}

/** Event types that count as positive feedback by default: what the feature service keeps as history. */
export const DEFAULT_POSITIVE_TYPES: readonly common.EventType[] = [
  common.EventType.VIEW,
  common.EventType.CLICK,
  common.EventType.ADD_TO_CART,
  common.EventType.PURCHASE,
  common.EventType.LIKE,
];

export interface LoggedImpression {
  /** The log entry's id ("<ms>-<seq>"). */
  id: string;
  impression: features.Impression;
  /** When it was served (Unix ms): the impression's own time, or the log's when it has none. */
  timeMs: number;
}

export interface LoggedFeedback {
  id: string;
  event: common.FeedbackEvent;
  timeMs: number;
}

export interface EventLogContents {
  impressions: LoggedImpression[];
  /** De-duplicated by event id (the first logged wins), in log order. */
  feedback: LoggedFeedback[];
  /** Log entries read (before de-duplication). */
  entries: number;
}

const logMs = (id: string): number => Number(id.slice(0, id.indexOf('-')));

/** Reads every entry the log holds between two instants (inclusive, Unix ms), page by page. */
export async function readEventLog(source: EventLogSource, sinceMs: number, untilMs: number, pageSize = 1000): Promise<EventLogContents> {
  const impressions: LoggedImpression[] = [];
  const feedback: LoggedFeedback[] = [];
  const seen = new Set<string>();
  let entries = 0;
  let afterId = '';
  for (;;) {
    const page = await source.readEventLog({ sinceMs: BigInt(sinceMs), untilMs: BigInt(untilMs), afterId, limit: pageSize });
    for (const entry of page.entries) {
      entries++;
      const event = entry.event;
      if (event.case === 'impression') {
        const served = Number(event.value.timestampMs);
        impressions.push({ id: entry.id, impression: event.value, timeMs: served > 0 ? served : logMs(entry.id) });
      } else if (event.case === 'feedback') {
        if (seen.has(event.value.eventId)) continue;
        seen.add(event.value.eventId);
        const at = Number(event.value.timestampMs);
        feedback.push({ id: entry.id, event: event.value, timeMs: at > 0 ? at : logMs(entry.id) });
      }
    }
    if (page.nextId === '' || page.entries.length === 0) break;
    afterId = page.nextId;
  }
  return { impressions, feedback, entries };
}

/** Every user or item the feature service holds, de-duplicated by id (a scan may repeat rows). */
export async function listAll<P extends { nextCursor: string }, T>(
  list: (request: { cursor: string; limit: number }) => Promise<P>,
  rowsOf: (page: P) => readonly T[],
  idOf: (row: T) => string,
  pageSize = 1000,
): Promise<Map<string, T>> {
  const rows = new Map<string, T>();
  let cursor = '';
  do {
    const page = await list({ cursor, limit: pageSize });
    for (const row of rowsOf(page)) rows.set(idOf(row), row);
    cursor = page.nextCursor;
  } while (cursor !== '');
  return rows;
}

/** The versions that served an answer as one key ("retrieval_model/index/preranking_model/ranking_model"). */
export function versionsKey(versions: features.ServedVersions | undefined): string {
  return [versions?.retrievalModel ?? '', versions?.index ?? '', versions?.prerankingModel ?? '', versions?.rankingModel ?? ''].join('/');
}

/** "CLICK,PURCHASE" as event types; throws naming the bad name. */
export function parseEventTypes(flag: string, text: string): common.EventType[] {
  const names = text
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  if (names.length === 0) throw new Error(`${flag}: expected event types such as CLICK,PURCHASE`);
  return names.map((name) => {
    const value = (common.EventType as unknown as Record<string, number>)[name.toUpperCase()];
    if (value === undefined || value === common.EventType.UNSPECIFIED || value === common.EventType.IMPRESSION) {
      const known = Object.keys(common.EventType).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED' && k !== 'IMPRESSION');
      throw new Error(`${flag}: unknown event type "${name}" (expected some of ${known.join(', ')})`);
    }
    return value as common.EventType;
  });
}
