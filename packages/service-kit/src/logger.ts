import type { LoggerService } from '@nestjs/common';
import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { currentRequestContext } from './request-context.js';
import { traceLogFields } from './tracing.js';

export type { Logger, LevelWithSilent } from 'pino';

/** JSON logs; every line written while serving a request carries its request id (and its trace ids when tracing is on). */
export function createLogger(service: string, level: LevelWithSilent = 'info', destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service },
    mixin: () => {
      const context = currentRequestContext();
      const fields = context ? { requestId: context.requestId, method: context.method } : {};
      // With tracing on, a line written inside a span names it: the logs of one slow request lead to its trace.
      const ids = traceLogFields();
      return ids ? { ...fields, ...ids } : fields;
    },
    // Ids decoded as bigint would make JSON.stringify throw; log them as strings.
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'bigint' ? a.toString() : a)) as Parameters<typeof method>);
      },
    },
    serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Routes Nest's own log lines into the pino logger. */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string): void {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
}
