export const CHANNELS = ['two_tower', 'popular', 'item_to_item'] as const;
export type ChannelName = (typeof CHANNELS)[number];

export function isChannelName(name: string): name is ChannelName {
  return (CHANNELS as readonly string[]).includes(name);
}

/** One item a channel proposes, with the channel's own score (higher is better; scales differ per channel). */
export interface ChannelCandidate {
  itemId: string;
  score: number;
  /** From the index payload, when the channel's source knew it. */
  category?: string;
}

/**
 * A channel's candidate, every one built here: one object of one shape for all of them (the merge reads ~1,000 per
 * request; objects with and without a category, or spread from another, were two to four shapes and a spread object).
 */
export function channelCandidate(itemId: string, score: number, category: string | undefined): ChannelCandidate {
  return { itemId, score, category };
}

/** The category of an index result (undefined when its payload has none). */
export function categoryOf(hit: { payload?: { category?: string } }): string | undefined {
  return hit.payload?.category;
}

/** Search filters a channel passes to its source so that its quota fills with acceptable items. */
export interface SourceFilter {
  /** Items never to return: seen ones (unless asked for), the request's excluded ids. */
  blocked: ReadonlySet<string>;
  includeCategories: readonly string[];
  excludeCategories: readonly string[];
}
