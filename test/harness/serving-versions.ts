import { preranking, ranking, retrieval } from '@recsys/contracts';
import type { RunningPipeline } from '@recsys/pipeline';
import { createServiceClient } from '@recsys/service-kit';

/** The model version each stage serves now, asked over gRPC: retrieval's index (its two-tower), the pre-ranker's and DLRM's. */
export async function servingVersions(
  pipeline: RunningPipeline,
  probe: { userId: string; itemId: string },
): Promise<Record<string, string>> {
  const timeout = { defaultTimeoutMs: 5000 };
  const r = createServiceClient(retrieval.RetrievalService, pipeline.addresses.retrieval, timeout);
  const p = createServiceClient(preranking.PrerankingService, pipeline.addresses.preranking, timeout);
  const d = createServiceClient(ranking.RankingService, pipeline.addresses.ranking, timeout);
  try {
    const [index, pre, dlrm] = await Promise.all([
      r.getIndexInfo({}),
      p.prerank({ userId: probe.userId, candidates: [{ itemId: probe.itemId }], limit: 1 }),
      d.getModelInfo({}),
    ]);
    return { 'two-tower': index.modelVersion, preranker: pre.modelVersion, dlrm: dlrm.modelVersion };
  } finally {
    r.close();
    p.close();
    d.close();
  }
}

/** Resolves once every stage serves `version` (services hot-reload a published version; the index is rebuilt). */
export async function waitForServing(
  pipeline: RunningPipeline,
  version: string,
  probe: { userId: string; itemId: string },
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen: Record<string, string> = {};
  while (Date.now() < deadline) {
    seen = await servingVersions(pipeline, probe).catch(() => seen);
    if (Object.values(seen).length === 3 && Object.values(seen).every((v) => v === version)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`version ${version} not served after ${timeoutMs} ms: ${JSON.stringify(seen)}`);
}
