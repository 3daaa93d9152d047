import { useEffect, useState } from 'preact/hooks';

/** Loads now and then every `ms` while the screen is shown; the last error is kept beside the last value. */
export function usePoll<T>(load: () => Promise<T>, ms: number, deps: unknown[] = []) {
  const [value, setValue] = useState<T | undefined>();
  const [error, setError] = useState<Error | undefined>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    const run = () =>
      load().then(
        (v) => {
          if (!alive) return;
          setValue(v);
          setError(undefined);
        },
        (e: Error) => {
          if (alive) setError(e);
        },
      );
    run();
    const timer = ms > 0 ? setInterval(run, ms) : undefined;
    return () => {
      alive = false;
      if (timer) clearInterval(timer);
    };
  }, [...deps, tick]);
  return { value, error, reload: () => setTick((t) => t + 1) };
}
