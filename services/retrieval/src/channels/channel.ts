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

/** The category of an index result, as a spreadable ChannelCandidate field. */
export function categoryOf(hit: { payload?: { category?: string } }): { category?: string } {
  const category = hit.payload?.category;
  return category === undefined ? {} : { category };
}

/** Search filters a channel passes to its source so that its quota fills with acceptable items. */
export interface SourceFilter {
  /** Items never to return: seen ones (unless asked for), the request's excluded ids. */
  blocked: ReadonlySet<string>;
  includeCategories: readonly string[];
  excludeCategories: readonly string[];
}
