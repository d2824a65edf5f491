/** A rules file that cannot be used; the message names the field (`rules[2].window: ...`). */
export class RulesFileError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'RulesFileError';
  }
}
