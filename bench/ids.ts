/** Record ids of the webhook benchmark: distinct, ordered, recognisable. */
export function benchRecordId(i: number): string {
  return `00000000-0000-4000-9000-${i.toString(16).padStart(12, '0')}`;
}
