import { status } from '@grpc/grpc-js';
import { common } from '@recsys/contracts';

/** Why a stage call failed, as a degradation cause (from its gRPC status). */
export function causeOf(error: unknown): common.DegradationCause {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case status.DEADLINE_EXCEEDED:
    case status.CANCELLED:
      return common.DegradationCause.DEADLINE_EXCEEDED;
    case status.UNAVAILABLE:
      return common.DegradationCause.UNAVAILABLE;
    case status.RESOURCE_EXHAUSTED:
      return common.DegradationCause.OVERLOADED;
    default:
      return common.DegradationCause.ERROR;
  }
}

/** The cause's short name for metric labels and logs ("deadline_exceeded"). */
export function causeLabel(cause: common.DegradationCause): string {
  return (common.DegradationCause[cause] ?? 'UNSPECIFIED').toLowerCase();
}

/** The error's message without grpc-js's "14 UNAVAILABLE: " prefix. */
export function detailOf(error: unknown): string {
  const details = (error as { details?: unknown } | null)?.details;
  if (typeof details === 'string' && details !== '') return details;
  return error instanceof Error ? error.message : String(error);
}
