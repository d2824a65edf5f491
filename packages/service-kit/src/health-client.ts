import { credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { service as healthService, type ServingStatus } from 'grpc-health-check';

const HealthClient = makeGenericClientConstructor(healthService as never, 'grpc.health.v1.Health');

/** Asks a server's grpc.health.v1 for one service's status ('' is the whole server). */
export function checkHealth(address: string, service = '', timeoutMs = 1000): Promise<ServingStatus> {
  const client = new HealthClient(address, credentials.createInsecure()) as unknown as {
    check(
      request: { service: string },
      options: { deadline: number },
      callback: (error: ServiceError | null, response?: { status: ServingStatus }) => void,
    ): void;
    close(): void;
  };
  return new Promise<ServingStatus>((resolve, reject) => {
    client.check({ service }, { deadline: Date.now() + timeoutMs }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response?.status ?? 'UNKNOWN');
    });
  });
}

/** Polls until the server reports SERVING, or throws after the timeout with the last error. */
export async function waitForServing(address: string, timeoutMs = 15000, service = ''): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      if ((await checkHealth(address, service, 500)) === 'SERVING') return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${address} did not report SERVING within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
}
