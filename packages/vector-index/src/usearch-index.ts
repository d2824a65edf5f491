import { Index, MetricKind, ScalarKind } from 'usearch';
import type { GraphQuantization, HnswParams } from './index-files.js';
import type { Metric } from './vector-store.js';

const USEARCH_METRIC: Record<Metric, MetricKind> = { ip: MetricKind.IP, cos: MetricKind.Cos, l2: MetricKind.L2sq };
const USEARCH_SCALAR: Record<GraphQuantization, ScalarKind> = {
  f32: ScalarKind.F32,
  f16: ScalarKind.F16,
};

/** The usearch index of a version: the items' own space, or the query-aware one (dim + 1 wide, L2). */
export function newUsearchIndex(dim: number, metric: Metric, params: HnswParams, querySpace: boolean): Index {
  return new Index({
    dimensions: querySpace ? dim + 1 : dim,
    metric: querySpace ? MetricKind.L2sq : USEARCH_METRIC[metric],
    quantization: USEARCH_SCALAR[params.quantization],
    connectivity: params.connectivity,
    expansion_add: params.expansionAdd,
    expansion_search: params.expansionSearch,
    multi: false,
  });
}
