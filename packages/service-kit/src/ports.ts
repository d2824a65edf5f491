/**
 * Where each service listens unless told otherwise (gateway: its gRPC port; http: the gateway's REST API), and so where
 * the others look for it: every service's config and the launcher (recsys-up) read these, nothing else spells them.
 *
 * All lie below Linux's ephemeral port range (32768–60999 by default, /proc/sys/net/ipv4/ip_local_port_range): a port
 * in that range can be taken at any moment as the source port of an outgoing connection (to the feature service, to
 * Redis, a health check), and a service that listens on it later fails with EADDRINUSE.
 */
export const DEFAULT_PORTS = {
  gateway: 15050,
  features: 15051,
  retrieval: 15052,
  preranking: 15053,
  ranking: 15054,
  reranking: 15055,
  http: 8080,
} as const;

export type GrpcServiceName = Exclude<keyof typeof DEFAULT_PORTS, 'http'>;

/** A service's default gRPC address on this machine, e.g. 127.0.0.1:15051 for the feature service. */
export const defaultAddress = (service: GrpcServiceName): string => `127.0.0.1:${DEFAULT_PORTS[service]}`;
