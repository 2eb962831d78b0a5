import type { Resolver } from '../../src/main/vm/egress/allowlist.js';

/**
 * A DNS resolver from a fixed table that records every name it was asked for; unknown names fail
 * as getaddrinfo does. Never touches the network.
 */
export function tableResolver(table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (host: string): Promise<string[]> => {
    calls.push(host);
    const answer = table[host];
    if (!answer)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return answer;
  };
  return Object.assign(fn, { calls });
}
