// A result that is either a value or a refusal in words: for what can fail in a way the caller
// reports rather than throws (a user's configuration the machine cannot serve, a file refused).

export type Result<T, E = string> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const refused = <E = string>(error: E): Result<never, E> => ({ ok: false, error });
