/** A caller's argument is invalid; `field` names it (a gRPC layer maps this to INVALID_ARGUMENT). */
export class VectorIndexArgumentError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'VectorIndexArgumentError';
  }
}

/** A file of an index directory is missing, truncated or does not match its checksum; `file` is its path. */
export class IndexFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'IndexFileError';
  }
}

/** The store was closed (for instance swapped out) and no longer answers. */
export class StoreClosedError extends Error {
  constructor(what: string) {
    super(`${what} is closed`);
    this.name = 'StoreClosedError';
  }
}
