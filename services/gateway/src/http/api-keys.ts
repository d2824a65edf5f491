import { createHash, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type Logger } from '@recsys/service-kit';
import type { AccessConfig } from '../config.js';

/** Shorter keys could be guessed; the start-up error names the variable, never the key. */
export const MIN_KEY_LENGTH = 16;
export const ANONYMOUS = 'anonymous';

/** Key names appear in logs and metric labels: keep them short and plain. */
const KEY_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

interface StoredKey {
  name: string;
  digest: Buffer;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * The key a caller presented: `Authorization: Bearer <key>` first, else `x-api-key`. The same names work as
 * HTTP headers and gRPC metadata.
 */
export function presentedKey(authorization: string | undefined, xApiKey: string | undefined): string | undefined {
  const bearer = authorization?.match(/^\s*Bearer\s+(\S+)\s*$/i)?.[1];
  if (bearer) return bearer;
  const key = xApiKey?.trim();
  return key ? key : undefined;
}

/** `name:key` pairs, comma-separated (API_KEYS). */
export function parseKeyList(text: string, variable = 'API_KEYS'): Array<[name: string, key: string]> {
  const pairs: Array<[string, string]> = [];
  const parts = text.split(',').map((p) => p.trim());
  parts.forEach((part, i) => {
    if (part === '') return;
    const colon = part.indexOf(':');
    if (colon < 0) throw new ConfigError(variable, `entry ${i + 1} must be name:key`);
    pairs.push([part.slice(0, colon).trim(), part.slice(colon + 1).trim()]);
  });
  return pairs;
}

/** A file of `name:key` or `NAME=key` lines (an env file); `#` comments and blank lines are skipped. */
export function parseKeyFile(text: string, variable = 'API_KEYS_FILE'): Array<[name: string, key: string]> {
  const pairs: Array<[string, string]> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^(?:export\s+)?([^\s:=]+)\s*[:=]\s*(.*)$/.exec(line);
    if (!match) throw new ConfigError(variable, `line ${i + 1} must be name:key or NAME=key`);
    let key = match[2]!.trim();
    // Env files often quote values.
    if (key.length >= 2 && (key[0] === '"' || key[0] === "'") && key.at(-1) === key[0]) key = key.slice(1, -1);
    pairs.push([match[1]!, key]);
  });
  return pairs;
}

/** A mounted Kubernetes Secret: one file per key, the file name is the key's name; `..data` and other dot entries are mount internals. */
export function readKeyDirectory(dir: string): Array<[name: string, key: string]> {
  const pairs: Array<[string, string]> = [];
  for (const entry of readdirSync(dir).sort()) {
    if (entry.startsWith('.')) continue;
    const path = join(dir, entry);
    // Secret files are symlinks into ..data; statSync follows them.
    if (!statSync(path).isFile()) continue;
    pairs.push([entry, readFileSync(path, 'utf8').replace(/[\r\n]+$/, '')]);
  }
  return pairs;
}

function readKeysFile(path: string): Array<[string, string]> {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (error) {
    throw new ConfigError('API_KEYS_FILE', `cannot read ${path}: ${(error as Error).message}`);
  }
  return isDirectory ? readKeyDirectory(path) : parseKeyFile(readFileSync(path, 'utf8'));
}

/** The configured API keys, kept only as sha256 digests; compared in constant time. */
export class ApiKeyStore {
  private readonly keys: StoredKey[];

  constructor(
    pairs: ReadonlyArray<readonly [name: string, key: string, variable: string]>,
    readonly authDisabled = false,
  ) {
    const names = new Set<string>();
    const digests = new Map<string, string>();
    this.keys = pairs.map(([name, key, variable]) => {
      if (!KEY_NAME.test(name))
        throw new ConfigError(variable, `key name "${name.slice(0, 64)}" must be 1-64 letters, digits, '_', '.' or '-'`);
      if (names.has(name)) throw new ConfigError(variable, `key name "${name}" is configured twice`);
      if (key.length < MIN_KEY_LENGTH) throw new ConfigError(variable, `key "${name}" must have at least ${MIN_KEY_LENGTH} characters`);
      if (/\s/.test(key)) throw new ConfigError(variable, `key "${name}" must not contain whitespace`);
      const digest = sha256(key);
      const other = digests.get(digest.toString('hex'));
      if (other !== undefined) throw new ConfigError(variable, `keys "${other}" and "${name}" are the same key`);
      names.add(name);
      digests.set(digest.toString('hex'), name);
      return { name, digest };
    });
    if (!authDisabled && this.keys.length === 0) {
      throw new ConfigError('API_KEYS', 'no API key configured: set API_KEYS or API_KEYS_FILE, or AUTH_DISABLED=true for local use only');
    }
  }

  /** Loads API_KEYS and API_KEYS_FILE; a ConfigError names the variable at fault. */
  static fromConfig(access: AccessConfig, logger?: Logger): ApiKeyStore {
    const pairs: Array<[string, string, string]> = [];
    if (access.apiKeys) for (const [n, k] of parseKeyList(access.apiKeys)) pairs.push([n, k, 'API_KEYS']);
    if (access.apiKeysFile) for (const [n, k] of readKeysFile(access.apiKeysFile)) pairs.push([n, k, 'API_KEYS_FILE']);
    const store = new ApiKeyStore(pairs, access.authDisabled);
    if (access.authDisabled) {
      logger?.warn(
        { ignoredKeys: store.names.length },
        `API key authentication is OFF (AUTH_DISABLED=true): every caller is "${ANONYMOUS}"`,
      );
    } else {
      logger?.info({ keys: store.names }, 'API keys loaded');
    }
    return store;
  }

  get names(): string[] {
    return this.keys.map((k) => k.name);
  }

  /**
   * The key's name, or undefined. Digests make every comparison the same length, and every configured key is
   * compared (no early exit), so timing reveals neither which key matched nor how much of one did.
   */
  authenticate(presented: string | undefined): { name: string } | undefined {
    if (this.authDisabled) return { name: ANONYMOUS };
    if (presented === undefined || presented === '') return undefined;
    const digest = sha256(presented);
    let match: string | undefined;
    for (const key of this.keys) {
      const equal = timingSafeEqual(digest, key.digest);
      match = equal ? key.name : match;
    }
    return match === undefined ? undefined : { name: match };
  }
}
