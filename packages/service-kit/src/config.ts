import { z } from 'zod';
import { defaultAddress } from './ports.js';

/** Thrown once at start-up; the message names the first invalid variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`invalid configuration: ${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

const port = z.coerce.number().int().min(0).max(65535);

/** A port variable with a service's own default. */
export const portVar = (defaultPort: number) => port.default(defaultPort);

/** A boolean variable: `true/false`, `1/0`, `yes/no`, `on/off`; anything else names the variable. */
export const booleanVar = z
  .string()
  .trim()
  .toLowerCase()
  .transform((text, ctx) => {
    if (['true', '1', 'yes', 'on'].includes(text)) return true;
    if (['false', '0', 'no', 'off'].includes(text)) return false;
    ctx.addIssue({ code: 'custom', message: `expected true or false, got "${text}"` });
    return z.NEVER;
  });

/**
 * Another service's gRPC address: host:port, [v6]:port, dns:///host:port, or inproc://NAME for a service in this
 * process (the all-in-one mode).
 */
export const addressVar = (defaultAddress: string) =>
  z
    .string()
    .regex(
      /^((dns:\/\/\/)?(\[[\da-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}|inproc:\/\/[a-z][a-z0-9-]*)$/,
      'must be host:port (or dns:///host:port), or inproc://NAME for a service in this process',
    )
    .default(defaultAddress);

/**
 * How long one call to the feature service may take when the caller's deadline is later or absent (inside the
 * pipeline the request's deadline is the bound): one default for every service that calls it.
 */
export const FEATURES_TIMEOUT_DEFAULT_MS = 300;

/** The feature service as every other service reaches it: its address and its per-call timeout, one name and one default each. */
export const featuresClientEnv = {
  FEATURES_ADDRESS: addressVar(defaultAddress('features')),
  FEATURES_TIMEOUT_MS: z.coerce.number().int().positive().max(60_000).default(FEATURES_TIMEOUT_DEFAULT_MS),
};

/** Where a service takes calls: a gRPC port, this process's in-process transport (all-in-one mode), or both. */
export const GRPC_LISTEN_MODES = ['network', 'in-process', 'both'] as const;
export type GrpcListen = (typeof GRPC_LISTEN_MODES)[number];

/** Variables every service reads. */
export const baseServiceEnv = {
  GRPC_HOST: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port (tests, local runs); services override the default with `portVar`. */
  GRPC_PORT: port.default(0),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port; -1 disables the metrics endpoint. */
  METRICS_PORT: z.coerce.number().int().min(-1).max(65535).default(-1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** network: a gRPC port; in-process: only callers in this process, at inproc://<service>; both. */
  GRPC_LISTEN: z.enum(GRPC_LISTEN_MODES).default('network'),
  /** Longest wait for in-flight calls to finish at shutdown before they are cut. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10000),
  /**
   * Connections older than this are closed gracefully (GOAWAY; calls in flight get SHUTDOWN_TIMEOUT_MS to
   * finish), so clients re-resolve a headless Service's name and new replicas get traffic after a scale-up.
   * 0 keeps connections for as long as they live.
   */
  GRPC_MAX_CONNECTION_AGE_MS: z.coerce.number().int().min(0).max(86_400_000).default(0),
};

export interface BaseServiceConfig {
  grpcHost: string;
  grpcPort: number;
  metricsHost: string;
  metricsPort: number;
  logLevel: z.infer<typeof baseServiceEnv.LOG_LEVEL>;
  shutdownTimeoutMs: number;
  /** 0: unlimited. */
  maxConnectionAgeMs: number;
  /** Absent: network. */
  grpcListen?: GrpcListen;
}

/** Validates the environment once; the first problem is named in the error. */
export function parseEnv<S extends z.ZodRawShape>(shape: S, env: NodeJS.ProcessEnv = process.env): z.infer<z.ZodObject<S>> {
  // Empty strings count as unset, as in most deployment tools.
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const result = z.object(shape).safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const variable = String(issue.path[0] ?? '(environment)');
    throw new ConfigError(variable, issue.message);
  }
  return result.data;
}

export function baseServiceConfig(env: z.infer<z.ZodObject<typeof baseServiceEnv>>): BaseServiceConfig {
  return {
    grpcHost: env.GRPC_HOST,
    grpcPort: env.GRPC_PORT,
    metricsHost: env.METRICS_HOST,
    metricsPort: env.METRICS_PORT,
    logLevel: env.LOG_LEVEL,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    maxConnectionAgeMs: env.GRPC_MAX_CONNECTION_AGE_MS,
    grpcListen: env.GRPC_LISTEN,
  };
}

/** A comma-separated list of `key=number` pairs, e.g. `VIEW=1,PURCHASE=4`. */
export const numberMap = z.string().transform((text, ctx) => {
  const map: Record<string, number> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [key, value] = part.split('=');
    const n = Number(value);
    if (!key || value === undefined || !Number.isFinite(n)) {
      ctx.addIssue({ code: 'custom', message: `expected key=number pairs, got "${part}"` });
      return z.NEVER;
    }
    map[key.trim()] = n;
  }
  return map;
});
