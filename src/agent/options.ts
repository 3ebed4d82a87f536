/**
 * twilld's flags and environment (flag wins), validated with zod. Pure: argv and env come in.
 */
import { Command } from 'commander';
import * as z from 'zod';
import { SUBNET_FILE } from '../common/constants.js';
import { parseIPv4 } from '../net/ipv4.js';

const schema = z.object({
  nodeName: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'node name: a DNS-1123 subdomain'),
  etcdEndpoints: z.array(z.url()).min(1, 'at least one etcd endpoint'),
  etcdCa: z.string().optional(),
  etcdCert: z.string().optional(),
  etcdKey: z.string().optional(),
  publicIp: z.string().refine((v) => parseIPv4(v) !== undefined, 'public IP: an IPv4 address').optional(),
  publicIface: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, 'public interface: a link name').optional(),
  subnetFile: z.string().startsWith('/', 'subnet file: an absolute path'),
  cniSocket: z.string().refine((v) => v === '' || v.startsWith('/'), 'CNI socket: an absolute path, or empty to disable'),
  healthListen: z.string().regex(/^[0-9.]+:\d{1,5}$/, 'health listen: host:port'),
  resyncIntervalSeconds: z.number().min(1).max(3600),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']),
});
export type AgentOptions = z.infer<typeof schema>;

export type ParseResult = { ok: true; options: AgentOptions } | { ok: false; errors: string[] };

export function parseAgentOptions(argv: string[], env: Record<string, string | undefined>): ParseResult {
  const cmd = new Command('twilld')
    .description('Twill node agent')
    .option('--node-name <name>', 'this node (env TWILL_NODE_NAME; default: hostname)')
    .option('--etcd-endpoints <urls>', 'comma-separated (env TWILL_ETCD_ENDPOINTS)')
    .option('--etcd-ca <file>', 'CA bundle (env TWILL_ETCD_CA)')
    .option('--etcd-cert <file>', 'client certificate (env TWILL_ETCD_CERT)')
    .option('--etcd-key <file>', 'client key (env TWILL_ETCD_KEY)')
    .option('--public-ip <ip>', 'underlay address (default: from --public-iface or the default route)')
    .option('--public-iface <name>', 'underlay interface (default: the default route\'s)')
    .option('--subnet-file <path>', 'where the CNI plugin reads the lease', SUBNET_FILE)
    .option('--cni-socket <path>', 'serve twill-cni calls on this Unix socket (empty: off)', '/run/twill/cni.sock')
    .option('--health-listen <host:port>', 'health and metrics (localhost only)', '127.0.0.1:9402')
    .option('--resync-interval <seconds>', 'full kernel resync period', '10')
    .option('--log-level <level>', 'debug|info|warn|error', 'info')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    return { ok: false, errors: [(e as Error).message] };
  }
  const o = cmd.opts<Record<string, string | undefined>>();
  const candidate = {
    nodeName: o.nodeName ?? env.TWILL_NODE_NAME ?? env.HOSTNAME,
    etcdEndpoints: (o.etcdEndpoints ?? env.TWILL_ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean),
    etcdCa: o.etcdCa ?? env.TWILL_ETCD_CA,
    etcdCert: o.etcdCert ?? env.TWILL_ETCD_CERT,
    etcdKey: o.etcdKey ?? env.TWILL_ETCD_KEY,
    publicIp: o.publicIp ?? env.TWILL_PUBLIC_IP,
    publicIface: o.publicIface ?? env.TWILL_PUBLIC_IFACE,
    subnetFile: o.subnetFile,
    cniSocket: o.cniSocket ?? '',
    healthListen: o.healthListen,
    resyncIntervalSeconds: Number(o.resyncInterval),
    logLevel: o.logLevel,
  };
  const r = schema.safeParse(candidate);
  if (!r.success) return { ok: false, errors: r.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`) };
  return { ok: true, options: r.data };
}
