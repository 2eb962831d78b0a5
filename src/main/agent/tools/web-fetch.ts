import { z } from 'zod';
import { capText } from '../output-cap.js';
import { runCommand } from './run-command.js';
import { MAX_RESULT_CHARS, ToolError, type Tool } from './types.js';

const input = z.object({ url: z.string().url().describe('An http(s) URL.') });

const ENTITIES: Record<string, string> = {
  ndash: '–',
  mdash: '—',
  hellip: '…',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  copy: '©',
  eacute: 'é',
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
};

/** Turns HTML into readable text: drops scripts and styles, keeps paragraphs and links' text. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|noscript|svg|head)\b[\s\S]*?<\/\1>/gi, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(br|\/p|\/div|\/li|\/h[1-6]|\/tr|\/section|\/article)\b[^>]*>/gi, '\n')
    .replace(/<li\b[^>]*>/gi, '\n- ')
    .replace(/<[^>]+>/g, '')
    .replace(/&(#x?[0-9a-f]+|\w+);/gi, (m, e: string) => {
      if (e[0] === '#') {
        const code =
          e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return Number.isFinite(code) ? String.fromCodePoint(code) : m;
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    })
    .replace(/[ \t]+/g, ' ')
    .replace(/\n\s*\n\s*\n+/g, '\n\n')
    .trim();
}

const MARK = '\n--paddock-fetch--';

/** `web_fetch`: fetches a URL from inside the VM, through the egress proxy, as readable text. */
export const webFetchTool: Tool<typeof input> = {
  name: 'web_fetch',
  description:
    'Fetch a URL from inside the VM (through Paddock’s allowlisting proxy) and return it as readable text. Hosts not on the allowlist are refused, and the person may be asked.',
  input,
  async run({ url }, ctx) {
    if (!/^https?:\/\//i.test(url))
      throw new ToolError('web_fetch takes http:// or https:// URLs only.');
    const r = await runCommand(ctx, {
      // Always through the egress proxy, even for 127.0.0.1 (NO_PROXY keeps bash's curl local).
      argv: [
        'curl',
        '-sS',
        '-L',
        '--noproxy',
        '',
        '--proxy',
        'http://127.0.0.1:3128',
        '--max-time',
        '60',
        '--max-filesize',
        '20000000',
        '-w',
        `${MARK}%{http_code} %{content_type}`,
        url,
      ],
      timeoutMs: 90_000,
    });
    const at = r.stdout.lastIndexOf(MARK);
    const body = at >= 0 ? r.stdout.slice(0, at) : r.stdout;
    const trailer = (at >= 0 ? r.stdout.slice(at + MARK.length) : '').trim();
    const code = trailer.split(' ')[0] || '000';
    const type = trailer.slice(code.length).trim();
    if (code === '403' && body.startsWith('Paddock blocked')) throw new ToolError(body.trim());
    if (/CONNECT tunnel failed, response 403/.test(r.stderr)) {
      // The proxy's 403 body is not shown by curl for CONNECT; say the same thing it says.
      const u = new URL(url);
      const target = `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
      throw new ToolError(
        `Paddock blocked a connection to ${target}: it is not on this task's network allowlist, and the person did not allow it. Do not try to reach it another way; tell the person, who can allow it (for example --allow-host ${u.hostname}).`,
      );
    }
    if (r.exitCode !== 0 && code === '000') {
      throw new ToolError(
        `Could not fetch ${url}: ${r.stderr.trim() || `curl exited ${r.exitCode}`}`,
      );
    }
    const text = /html/i.test(type) || /^\s*<(!doctype|html)/i.test(body) ? htmlToText(body) : body;
    const status = Number(code);
    return {
      content: `[${url} → HTTP ${code}${type ? `, ${type}` : ''}]\n\n${capText(text, MAX_RESULT_CHARS)}`,
      isError: status >= 400,
    };
  },
};
