// Bounded waits for the benchmarks: a phase that does not finish in time fails the run, naming what
// it waited for and (when the caller can tell) why it may be stuck, instead of leaving the bench
// idle until someone kills it.

/** How long `explain` may take: it must not become the next thing to hang. */
const EXPLAIN_MS = 5_000;

/**
 * `work`, or an Error "bench: <what> did not finish within N s: <explain()>" once `ms` have passed.
 * The work itself is not cancelled; the caller's cleanup (finally) stops what it started.
 */
export async function within<T>(what: string, ms: number, work: Promise<T>, explain?: () => string | Promise<string>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void (async () => {
        let why = '';
        if (explain) {
          try {
            why = await Promise.race([Promise.resolve(explain()), new Promise<string>((r) => setTimeout(() => r('(no diagnosis within 5 s)'), EXPLAIN_MS))]);
          } catch (err) {
            why = `(no diagnosis: ${err instanceof Error ? err.message : String(err)})`;
          }
        }
        reject(new Error(`bench: ${what} did not finish within ${fmtSeconds(ms)}${why ? `: ${why}` : ''}`));
      })();
    }, ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function fmtSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/**
 * One clean-up step that must not hide the failure that led to it: when `failed` is set, an error
 * of the step is printed and swallowed, so the first failure is the one the run ends with.
 */
export async function cleanUp<T>(failed: boolean, step: () => Promise<T>): Promise<T | undefined> {
  try {
    return await step();
  } catch (err) {
    if (!failed) throw err;
    process.stderr.write(`bench: also, while cleaning up: ${err instanceof Error ? err.message : String(err)}\n`);
    return undefined;
  }
}
