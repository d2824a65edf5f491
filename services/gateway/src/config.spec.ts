import { ConfigError, FEATURES_TIMEOUT_DEFAULT_MS } from '@recsys/service-kit';
import { loadGatewayConfig } from './config.js';

const base = { AUTH_DISABLED: 'true' };

function problem(env: Record<string, string>): string {
  try {
    loadGatewayConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('gateway configuration', () => {
  it('has working defaults for local use once auth is explicitly off', () => {
    const config = loadGatewayConfig(base);
    expect(config.grpcPort).toBe(15050);
    expect(config.httpPort).toBe(8080);
    expect(config.addresses.ranking).toBe('127.0.0.1:15054');
    // The feature service's per-call timeout: the one default every service that calls it shares (service-kit).
    expect(config.featuresTimeoutMs).toBe(FEATURES_TIMEOUT_DEFAULT_MS);
    expect(config.budget.defaultMs).toBe(250);
    expect(config.adaptive.channelShares).toEqual({ two_tower: 0.6, popular: 0.15, item_to_item: 0.25 });
    expect(config.access.corsOrigins).toEqual([]);
  });

  it('probes an open circuit after a second, so a restarted stage serves again within the 2 s recovery target (found by test:resilience)', () => {
    expect(loadGatewayConfig(base).breaker).toEqual({ failures: 5, openMs: 1000, minFailingMs: 1000 });
  });

  it('admission control: an adaptive in-flight limit of 4..32 steering to 44% of the default budget, no lag limit; ADMISSION_ADAPTIVE=false keeps it static', () => {
    expect(loadGatewayConfig(base).admission).toEqual({
      maxInFlight: 32,
      adaptive: true,
      minInFlight: 4,
      targetMs: 110,
      maxQueue: 64,
      queueTimeoutMs: 50,
      maxEventLoopLagMs: 0,
    });
    expect(loadGatewayConfig({ ...base, ADMISSION_ADAPTIVE: 'false' }).admission.adaptive).toBe(false);
    expect(problem({ ...base, ADMISSION_MIN_IN_FLIGHT: '0' })).toContain('ADMISSION_MIN_IN_FLIGHT');
    expect(problem({ ...base, ADMISSION_TARGET_MS: '0' })).toContain('ADMISSION_TARGET_MS');
    // The target follows the budget unless set: a 1 s budget is not steered to 110 ms.
    expect(loadGatewayConfig({ ...base, BUDGET_DEFAULT_MS: '1000' }).admission.targetMs).toBe(440);
    expect(loadGatewayConfig({ ...base, BUDGET_DEFAULT_MS: '1000', ADMISSION_TARGET_MS: '150' }).admission.targetMs).toBe(150);
  });

  it('refuses to start without API keys unless auth is explicitly disabled', () => {
    expect(problem({})).toContain('API_KEYS: no API key configured');
    expect(loadGatewayConfig({ API_KEYS: 'ci:0123456789abcdef0123' }).access.authDisabled).toBe(false);
  });

  it('names the variable that is wrong or inconsistent', () => {
    expect(problem({ ...base, RANKING_ADDRESS: 'nowhere' })).toContain('RANKING_ADDRESS: must be host:port');
    expect(problem({ ...base, BUDGET_DEFAULT_MS: '5000' })).toContain('BUDGET_DEFAULT_MS: must lie within');
    expect(problem({ ...base, RANK_MIN: '500' })).toContain('RANK_MIN: must not exceed RANK_MAX');
    expect(problem({ ...base, RANK_MAX: '2000' })).toContain('RANK_MAX: must not exceed RETRIEVE_MAX');
    expect(problem({ ...base, DEFAULT_K: '500' })).toContain('DEFAULT_K: must not exceed MAX_K');
    expect(problem({ ...base, CHANNEL_SHARES: 'two_tower=2' })).toContain('CHANNEL_SHARES: "two_tower=2"');
    expect(problem({ ...base, CHANNEL_SHARES: 'popular=0' })).toContain('CHANNEL_SHARES: at least one channel');
    expect(problem({ ...base, AUTH_DISABLED: 'maybe' })).toContain('AUTH_DISABLED: expected true or false, got "maybe"');
    expect(problem({ ...base, MAX_ID_LENGTH: '20' })).toContain('MAX_ID_LENGTH');
  });

  it('reads CORS origins as a list', () => {
    expect(loadGatewayConfig({ ...base, CORS_ORIGINS: 'https://a.example, https://b.example' }).access.corsOrigins).toEqual([
      'https://a.example',
      'https://b.example',
    ]);
  });
});
