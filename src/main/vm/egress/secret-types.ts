/**
 * What the egress proxy is told about a session's secrets and pinned hosts (issue 16). Built by
 * the core's secrets service for one session; the proxy never sees where values are stored.
 */

/** One secret as the proxy uses it for one session. */
export interface ProxySecret {
  /** Its name, for the egress log and messages (never the value). */
  name: string;
  /** The guest's environment variable that holds the placeholder (for messages to the model). */
  envName: string;
  /** What the guest sees instead of the value; random, different in every session. */
  placeholder: string;
  /** The real value. SECURITY: never logged, never sent to the guest, never to another host. */
  value: string;
  /** Allowlist-syntax patterns of the hosts it may be sent to. */
  hosts: string[];
  /** Also swap the placeholder in request bodies (headers and the request target always). */
  inBody: boolean;
  /** Its hosts are pinned: credentials there must come from a placeholder swap. */
  pin: boolean;
}

/** A session's interception policy: the only hosts the proxy terminates TLS for. */
export interface InterceptPolicy {
  secrets: ProxySecret[];
  /** Allowlist-syntax patterns pinned without a secret of their own (no credentials at all). */
  pinHosts: string[];
}
