import { readFileSync } from 'node:fs';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** A text file as UTF-8, or as Latin-1 when it is not valid UTF-8 (the MovieLens files are Latin-1). */
export function readText(path: string): string {
  const bytes = readFileSync(path);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    text = latin1.decode(bytes);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Non-empty lines with their 1-based line numbers; a trailing \r is dropped. */
export function textLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k]!.endsWith('\r') ? lines[k]!.slice(0, -1) : lines[k]!;
    if (line.trim() !== '') out.push({ line: k + 1, text: line });
  }
  return out;
}
