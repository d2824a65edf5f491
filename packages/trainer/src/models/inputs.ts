import { cardinality } from '@recsys/data';
import { describeInputs as describeInputsOf, type InputLayout } from '@recsys/model-format';
import { type Node, g } from '../graph/graph.js';

// The layouts and input descriptions are the model format's (@recsys/model-format); the graph nodes they become are the trainer's.
export {
  describeInputs,
  inputLayout,
  batchFeeds,
  type EncodedSources,
  type InputDescription,
  type InputLayout,
} from '@recsys/model-format';

export interface InputNodes {
  categorical?: Node;
  continuous?: Node;
  multi: { codes: Node; weights: Node }[];
}

/** The input nodes of a layout; `batch` names the rows' symbolic dim (the item tower's rows differ from the users' in training). */
export function inputNodes(layout: InputLayout, prefix = '', batch = 'B'): InputNodes {
  const byName = new Map(describeInputsOf(layout, prefix, batch).map((d) => [d.name, g.input(d.name, d.shape, d.dtype)]));
  return {
    categorical: byName.get(`${prefix}categorical`),
    continuous: byName.get(`${prefix}continuous`),
    multi: layout.multi.map((f) => ({
      codes: byName.get(`${prefix}multi_${f.name}`)!,
      weights: byName.get(`${prefix}multi_${f.name}_weights`)!,
    })),
  };
}

/** One embedding per categorical and multi-valued feature ([B, d] each), categorical first, in layout order. */
export function embedAll(layout: InputLayout, inputs: InputNodes, tables: readonly Node[]): Node[] {
  const single = layout.categorical.map((_, c) => g.gather(tables[c]!, g.column(inputs.categorical!, c)));
  const pooled = layout.multi.map((_, m) => {
    const { codes, weights } = inputs.multi[m]!;
    const rows = g.gather(tables[layout.categorical.length + m]!, codes);
    return g.reduceSum(g.mul(rows, g.unsqueeze(weights, [2])), [1]);
  });
  return [...single, ...pooled];
}

/** Table sizes for embedAll, in the same order. */
export function tableSizes(layout: InputLayout): number[] {
  return [...layout.categorical, ...layout.multi].map(cardinality);
}
