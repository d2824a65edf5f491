import { create, fromBinary, toBinary, type DescMethod, type DescService } from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
// Not re-exported from the package root.
import type { PackageDefinition } from '@grpc/grpc-js/build/src/make-client';
import { EncodedMessage } from './encoded-message.js';
import { decodeRequest } from './undecodable-request.js';

/**
 * Channel options shared by clients and servers: batch answers run to hundreds of KiB, and
 * HTTP/2's 64 KiB default flow-control window costs round trips on them.
 */
export const CHANNEL_OPTIONS = {
  'grpc-node.flow_control_window': 4 * 1024 * 1024,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
} as const;

/**
 * How soon a client's channel tries again to connect after losing its server. grpc-js starts at 1 s and grows the wait
 * 1.6 times per failed try up to 120 s, so a stage restarted after a few seconds down (kill -9 and a restart, a rolling
 * update) was not called again for seconds more: test:resilience measured 3-4 s of fallbacks after the restarted stage
 * served. A loopback or in-cluster connection is cheap to try: 100 ms, growing to 500 ms at most (a stage that waits for
 * the feature service, and then the gateway's circuit probe, each add one such wait to the recovery).
 */
export const RECONNECT_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 500,
} as const;

/**
 * What a client of a `dns:` target adds: calls spread round robin over every address the name resolves to, so a
 * `dns:///` name of a headless Kubernetes Service balances per call over the replicas.
 */
export const CLIENT_CHANNEL_OPTIONS = {
  ...CHANNEL_OPTIONS,
  'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
} as const;

/**
 * The channel options of a client of `target`: round robin for a name a resolver turns into addresses (`dns:///…`, any
 * `scheme://` target: several replicas); pick_first for a plain host:port, whose one connection, once lost (a restarted
 * service), is re-made by the next call, which waits for it, where round robin would fail calls fast until its
 * reconnect backoff ends.
 */
export function clientChannelOptions(target: string): Record<string, string | number> {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(target) || target.startsWith('dns:')
    ? { ...CLIENT_CHANNEL_OPTIONS, ...RECONNECT_OPTIONS }
    : { ...CHANNEL_OPTIONS, ...RECONNECT_OPTIONS };
}

/** The grpc-js definition of one method, serialising with protobuf-es (no proto-loader). */
export function methodDefinition(service: DescService, method: DescMethod): MethodDefinition<unknown, unknown> & { originalName: string } {
  return {
    path: `/${service.typeName}/${method.name}`,
    requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
    responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    // create() returns an existing message unchanged and fills a plain object's defaults.
    requestSerialize: (value) => Buffer.from(toBinary(method.input, create(method.input, value as never))),
    // Bytes that do not decode become INVALID_ARGUMENT naming the field (the interceptor), not grpc-js's INTERNAL.
    requestDeserialize: (bytes) => decodeRequest(method.input, bytes),
    responseSerialize: (value) => {
      if (value instanceof EncodedMessage) {
        if (value.schema.typeName !== method.output.typeName) {
          throw new TypeError(`${method.name} answers ${method.output.typeName}, not ${value.schema.typeName}`);
        }
        return Buffer.from(value.bytes.buffer, value.bytes.byteOffset, value.bytes.byteLength);
      }
      return Buffer.from(toBinary(method.output, create(method.output, value as never)));
    },
    responseDeserialize: (bytes) => fromBinary(method.output, bytes),
    originalName: method.localName,
  };
}

/** Methods keyed by their proto name, the key Nest matches `@GrpcMethod` handlers by; `except` paths left out. */
export function serviceDefinition(service: DescService, except: ReadonlySet<string> = new Set()): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const one = methodDefinition(service, method);
    if (!except.has(one.path)) definition[method.name] = one;
  }
  return definition as ServiceDefinition;
}

/**
 * A grpc-js package definition for the given services, keyed by their full names; the `except` paths (methods served
 * on grpc-js directly) left out, and a service left without methods too.
 */
export function packageDefinition(services: readonly DescService[], except: ReadonlySet<string> = new Set()): PackageDefinition {
  const definition: PackageDefinition = {};
  for (const service of services) {
    const one = serviceDefinition(service, except);
    if (Object.keys(one).length > 0) definition[service.typeName] = one;
  }
  return definition;
}

/** The proto package of a service ("recsys.features.v1" for "recsys.features.v1.FeatureService"). */
export function protoPackageOf(service: DescService): string {
  return service.typeName.slice(0, service.typeName.lastIndexOf('.'));
}
