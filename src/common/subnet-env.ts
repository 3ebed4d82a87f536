/**
 * The subnet file the node agent writes for the plugin (`/run/twill/subnet.env`), flannel's format
 * with Twill's key names. Pure parse/render.
 */
export interface SubnetEnv {
  /** Cluster pod network, e.g. 10.244.0.0/16. */
  network?: string;
  /** This node's subnet written as gateway/prefix, e.g. 10.244.1.1/24 (flannel's convention). */
  subnet?: string;
  mtu?: number;
  ipMasq?: boolean;
}

export function parseSubnetEnv(text: string): SubnetEnv {
  const out: SubnetEnv = {};
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (key === 'TWILL_NETWORK') out.network = value;
    else if (key === 'TWILL_SUBNET') out.subnet = value;
    else if (key === 'TWILL_MTU' && /^\d+$/.test(value)) out.mtu = Number(value);
    else if (key === 'TWILL_IPMASQ') out.ipMasq = value === 'true';
  }
  return out;
}

export function renderSubnetEnv(env: SubnetEnv): string {
  const lines: string[] = [];
  if (env.network !== undefined) lines.push(`TWILL_NETWORK=${env.network}`);
  if (env.subnet !== undefined) lines.push(`TWILL_SUBNET=${env.subnet}`);
  if (env.mtu !== undefined) lines.push(`TWILL_MTU=${env.mtu}`);
  if (env.ipMasq !== undefined) lines.push(`TWILL_IPMASQ=${env.ipMasq}`);
  return `${lines.join('\n')}\n`;
}
