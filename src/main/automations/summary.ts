/** The longest summary an inbox item carries; the whole answer stays in the session. */
export const SUMMARY_CHARS = 280;

/**
 * A short summary of the session's final answer for the inbox: Markdown decoration dropped,
 * whitespace folded, cut at a sentence or word boundary with an ellipsis when too long.
 */
export function summarise(finalText: string, max = SUMMARY_CHARS): string {
  const plain = finalText
    .replace(/```[\s\S]*?```/g, ' ')
    .replace(/^#+\s*/gm, '')
    .replace(/[*_`>]+/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
  if (plain.length <= max) return plain;
  const cut = plain.slice(0, max - 1);
  const sentence = cut.lastIndexOf('. ');
  if (sentence > max * 0.5) return cut.slice(0, sentence + 1);
  const space = cut.lastIndexOf(' ');
  return (space > max * 0.5 ? cut.slice(0, space) : cut).trimEnd() + '…';
}
