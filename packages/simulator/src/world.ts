import { type Dataset, type SyntheticOptions, type SyntheticTruth, type Random, generateSyntheticWithTruth } from '@recsys/data';

const { exp } = Math;
const sigmoid = (x: number): number => 1 / (1 + exp(-x));

/** The generator's per-impression click noise (synthetic.ts draws 0.5 × normal on every logit). */
const CLICK_NOISE = 0.5;

/**
 * The simulated world: the synthetic generator's users and catalogue and its planted tastes (user cluster ×
 * item category affinity, item quality), which the models never see. A simulated user clicks a shown item as the
 * generator's impressions were clicked; a click converts to a purchase with a lower logit.
 */
export class SimulatedWorld {
  private constructor(
    /** The generator's dataset: users, items and its own (historical) impressions. */
    readonly dataset: Dataset,
    readonly truth: SyntheticTruth,
    private readonly categories: number,
    /** Logit offset of a purchase after a click. */
    readonly purchaseOffset: number,
  ) {}

  static create(options: SyntheticOptions, purchaseOffset = -1): SimulatedWorld {
    const { dataset, truth } = generateSyntheticWithTruth(options);
    const clusters = options.clusters ?? 8;
    return new SimulatedWorld(dataset, truth, truth.affinity.length / clusters, purchaseOffset);
  }

  get users(): number {
    return this.dataset.users.ids.length;
  }

  /** The click logit of showing item row `item` to user row `user`, without noise. */
  clickLogit(user: number, item: number): number {
    const { truth } = this;
    return truth.bias + truth.affinity[truth.userCluster[user]! * this.categories + truth.itemCategory[item]!]! + truth.itemQuality[item]!;
  }

  /** One simulated reaction to an impression: clicked, and if so bought. */
  react(user: number, item: number, random: Random): { click: boolean; purchase: boolean } {
    const logit = this.clickLogit(user, item) + CLICK_NOISE * random.normal();
    const click = random.next() < sigmoid(logit);
    return { click, purchase: click && random.next() < sigmoid(logit + this.purchaseOffset) };
  }

  /** The ground-truth best k items for a user (highest click logit): the oracle a recommender can at most match. */
  oracle(user: number, k: number): number[] {
    const n = this.dataset.items.ids.length;
    const scores = Float64Array.from({ length: n }, (_, i) => this.clickLogit(user, i));
    return Array.from({ length: n }, (_, i) => i)
      .sort((a, b) => scores[b]! - scores[a]!)
      .slice(0, k);
  }
}
