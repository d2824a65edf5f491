import { z } from 'zod';
import { ITEM_CACHE_DEFAULTS, type ItemCacheSettings } from '@recsys/serving';

/** The item cache's environment variables, shared by the stages that read item features: `ITEM_CACHE_SIZE` 0 turns it off. */
export const itemCacheEnv = {
  ITEM_CACHE_SIZE: z.coerce.number().int().min(0).max(100_000_000).default(ITEM_CACHE_DEFAULTS.maxItems),
  ITEM_CACHE_TTL_MS: z.coerce.number().int().positive().max(86_400_000).default(ITEM_CACHE_DEFAULTS.ttlMs),
  ITEM_CACHE_MISSING_TTL_MS: z.coerce.number().int().min(0).max(86_400_000).default(ITEM_CACHE_DEFAULTS.missingTtlMs),
};

export function itemCacheSettings(e: {
  ITEM_CACHE_SIZE: number;
  ITEM_CACHE_TTL_MS: number;
  ITEM_CACHE_MISSING_TTL_MS: number;
}): ItemCacheSettings {
  return { maxItems: e.ITEM_CACHE_SIZE, ttlMs: e.ITEM_CACHE_TTL_MS, missingTtlMs: e.ITEM_CACHE_MISSING_TTL_MS };
}
