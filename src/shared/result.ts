/**
 * Every API handler returns a Result instead of throwing across a process boundary, so the
 * renderer always gets a code it can branch on and a sentence it can show.
 */
export interface AppError {
  /** Stable machine-readable code, e.g. `BAD_REQUEST`, `NOT_FOUND`. */
  code: string;
  /** A sentence a person can act on. */
  message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: AppError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function err<T = never>(code: string, message: string): Result<T> {
  return { ok: false, error: { code, message } };
}

/** An error thrown inside the core that already carries a code and a person-readable sentence. */
export class PaddockError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PaddockError';
  }
}
