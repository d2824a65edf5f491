import { z } from 'zod';
import { ITEM_CACHE_DEFAULTS, ITEM_TABLE_DEFAULTS, type ItemCacheSettings, type ItemTableSettings } from '@recsys/serving';

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

/**
 * The item table's environment variables (the model stages' full-catalogue table of encoded items): `ITEM_TABLE_MAX_ITEMS`
 * 0 turns it off (every candidate read through the item cache), `ITEM_TABLE_REFRESH_MS` 0 reads it only at model load.
 */
export const itemTableEnv = {
  ITEM_TABLE_MAX_ITEMS: z.coerce.number().int().min(0).max(1_000_000_000).default(ITEM_TABLE_DEFAULTS.maxItems),
  ITEM_TABLE_REFRESH_MS: z.coerce.number().int().min(0).max(604_800_000).default(ITEM_TABLE_DEFAULTS.refreshMs),
};

export function itemTableSettings(e: { ITEM_TABLE_MAX_ITEMS: number; ITEM_TABLE_REFRESH_MS: number }): ItemTableSettings {
  return { maxItems: e.ITEM_TABLE_MAX_ITEMS, refreshMs: e.ITEM_TABLE_REFRESH_MS };
}
