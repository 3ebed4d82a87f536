/**
 * twilld's flags and environment (flag wins), validated with zod. Pure: argv and env come in.
 */
import { Command } from 'commander';
import * as z from 'zod';
import { SUBNET_FILE } from '../common/constants.js';
import { parseCidr, parseIPv4 } from '../net/ipv4.js';
import { parseUnderlayIpv6 } from '../model/lease.js';
import { parseListen } from './listen.js';

/**
 * Every path is absolute: the agent and the standalone plugin run from different working
 * directories, so a relative path would name two different files.
 */
const absolutePath = (what: string): z.ZodString => z.string().startsWith('/', `${what}: an absolute path`).refine((v) => !v.includes('\0'), `${what}: no NUL bytes`);

const validRegex = (v: string): boolean => {
  try {
    new RegExp(v);
    return true;
  } catch {
    return false;
  }
};

const schema = z
  .object({
    nodeName: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'node name: a DNS-1123 subdomain'),
    etcdEndpoints: z.array(z.url()).min(1, 'at least one etcd endpoint'),
    etcdCa: absolutePath('etcd CA').optional(),
    etcdCert: absolutePath('etcd client certificate').optional(),
    etcdKey: absolutePath('etcd client key').optional(),
    publicIp: z.string().refine((v) => parseIPv4(v) !== undefined, 'public IP: an IPv4 address').optional(),
    /** This node's IPv6 underlay address, announced in the lease (dual stack over IPv4 does not need it). */
    publicIpv6: z.string().refine((v) => parseUnderlayIpv6(v) !== undefined, 'public IPv6: a canonical IPv6 unicast address (RFC 5952, e.g. 2001:db8::10)').optional(),
    publicIface: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, 'public interface: a link name').optional(),
    ifaceRegex: z.array(z.string().min(1).refine(validRegex, 'interface regex: a valid regular expression')).optional(),
    ifaceCidr: z.array(z.string().refine((v) => parseCidr(v, false) !== undefined, 'interface CIDR: an IPv4 CIDR')).optional(),
    ifaceCanReach: z.string().refine((v) => parseIPv4(v) !== undefined, 'can-reach: an IPv4 address').optional(),
    subnetFile: absolutePath('subnet file'),
    cniSocket: z.string().refine((v) => v === '' || (v.startsWith('/') && !v.includes('\0')), 'CNI socket: an absolute path, or empty to disable'),
    healthListen: z.string().refine((v) => parseListen(v) !== undefined, 'health listen: IPv4:port, [IPv6]:port or localhost:port (port 0-65535)'),
    /** The health server has no authentication: a non-loopback address must be asked for explicitly. */
    healthListenPublic: z.boolean().optional(),
    /** Masquerade pod traffic leaving the cluster network (flannel's --ip-masq). Absent: on. */
    ipMasq: z.boolean().optional(),
    /** Masquerade IPv6 pod traffic leaving the cluster's IPv6 network (flannel's --ip6-masq). Absent: off. */
    ip6Masq: z.boolean().optional(),
    resyncIntervalSeconds: z.number().min(1).max(3600),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']),
  })
  .superRefine((o, ctx) => {
    const listen = parseListen(o.healthListen);
    if (listen && !listen.loopback && o.healthListenPublic !== true) {
      ctx.addIssue({ code: 'custom', path: ['healthListen'], message: `${o.healthListen} is not a loopback address; /status and /metrics have no authentication: add --health-listen-public to serve them there` });
    }
    const methods = [o.publicIface && '--public-iface', o.ifaceRegex?.length && '--iface-regex', o.ifaceCidr?.length && '--iface-cidr', o.ifaceCanReach && '--iface-can-reach'].filter(Boolean);
    if (o.publicIp !== undefined && methods.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['publicIp'], message: `--public-ip names the underlay address itself; drop ${methods.join(', ')}` });
    }
    if ((o.etcdCert === undefined) !== (o.etcdKey === undefined)) ctx.addIssue({ code: 'custom', path: ['etcdCert'], message: '--etcd-cert and --etcd-key go together' });
  });
export type AgentOptions = z.infer<typeof schema>;

/** IPv6 masquerade is off unless --ip6-masq (or TWILL_IP6_MASQ=true) turned it on. */
export const ip6MasqOn = (o: Pick<AgentOptions, 'ip6Masq'>): boolean => o.ip6Masq === true;

/** Masquerade is on unless --no-ip-masq (or TWILL_IP_MASQ=false) turned it off. */
export const ipMasqOn = (o: Pick<AgentOptions, 'ipMasq'>): boolean => o.ipMasq !== false;

export type ParseResult =
  | { ok: true; options: AgentOptions }
  /** `help` set: --help or --version was asked for; print it on stdout and exit 0. */
  | { ok: false; errors: string[]; help?: string };

const list = (text: string | undefined): string[] | undefined => {
  const items = text?.split(',').map((s) => s.trim()).filter(Boolean);
  return items && items.length > 0 ? items : undefined;
};

/** TWILL_IP_MASQ and friends: true|false|1|0|yes|no (anything else is an error naming the variable). */
function envBool(env: Record<string, string | undefined>, name: string): boolean | string | undefined {
  const v = env[name]?.trim().toLowerCase();
  if (v === undefined || v === '') return undefined;
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return `${name}=${env[name]}: true or false`;
}

export function parseAgentOptions(argv: string[], env: Record<string, string | undefined>, version = 'unknown'): ParseResult {
  let out = '';
  const repeat = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];
  const cmd = new Command('twilld')
    .description('Twill node agent: leases this node\'s pod subnet and programs the routes to every other node')
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .option('--node-name <name>', 'this node (env TWILL_NODE_NAME; default: hostname)')
    .option('--etcd-endpoints <urls>', 'comma-separated (env TWILL_ETCD_ENDPOINTS)')
    .option('--etcd-ca <file>', 'CA bundle, absolute path (env TWILL_ETCD_CA)')
    .option('--etcd-cert <file>', 'client certificate, absolute path (env TWILL_ETCD_CERT)')
    .option('--etcd-key <file>', 'client key, absolute path (env TWILL_ETCD_KEY)')
    .option('--public-ip <ip>', 'underlay address, held by one of this node\'s interfaces (env TWILL_PUBLIC_IP)')
    .option('--public-ipv6 <ip>', 'this node\'s IPv6 underlay address, announced in its lease (env TWILL_PUBLIC_IPV6)')
    .option('--public-iface <name>', 'underlay interface (env TWILL_PUBLIC_IFACE)')
    .option('--iface-regex <regex>', 'first interface whose name or IPv4 address matches; repeatable (env TWILL_IFACE_REGEX, comma-separated)', repeat)
    .option('--iface-cidr <cidrs>', 'first address inside one of these CIDRs, comma-separated (env TWILL_IFACE_CIDR)')
    .option('--iface-can-reach <ip>', 'the interface and source address the kernel routes to this IP from (env TWILL_IFACE_CAN_REACH)')
    .option('--subnet-file <path>', 'where the CNI plugin reads the lease, absolute path', SUBNET_FILE)
    .option('--cni-socket <path>', 'serve twill-cni calls on this Unix socket, absolute path (empty: off)', '/run/twill/cni.sock')
    .option('--health-listen <host:port>', 'health, status and metrics (IPv4:port, [IPv6]:port, localhost:port)', '127.0.0.1:9402')
    .option('--health-listen-public', 'allow --health-listen on a non-loopback address (the endpoints have no authentication)')
    .option('--ip-masq', 'masquerade pod traffic leaving the cluster network (default; env TWILL_IP_MASQ=true|false)')
    .option('--no-ip-masq', 'do not masquerade (the pod network is routed by the underlay)')
    .option('--ip6-masq', 'masquerade IPv6 pod traffic leaving the cluster IPv6 network (default off; env TWILL_IP6_MASQ=true|false)')
    .option('--resync-interval <seconds>', 'full kernel resync period', '10')
    .option('--log-level <level>', 'debug|info|warn|error', 'info')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: (s) => (out += s) });
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return { ok: false, errors: [], help: out };
    return { ok: false, errors: [(e as Error).message] };
  }
  const o = cmd.opts<Record<string, string | undefined> & { ifaceRegex?: string[]; healthListenPublic?: boolean; ipMasq?: boolean; ip6Masq?: boolean }>();
  const errors: string[] = [];
  const bool = (flag: boolean | undefined, name: string): boolean | undefined => {
    if (flag !== undefined) return flag;
    const v = envBool(env, name);
    if (typeof v === 'string') errors.push(v);
    return typeof v === 'boolean' ? v : undefined;
  };
  const candidate = {
    nodeName: o.nodeName ?? env.TWILL_NODE_NAME ?? env.HOSTNAME,
    etcdEndpoints: (o.etcdEndpoints ?? env.TWILL_ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean),
    etcdCa: o.etcdCa ?? env.TWILL_ETCD_CA,
    etcdCert: o.etcdCert ?? env.TWILL_ETCD_CERT,
    etcdKey: o.etcdKey ?? env.TWILL_ETCD_KEY,
    publicIp: o.publicIp ?? env.TWILL_PUBLIC_IP,
    publicIpv6: o.publicIpv6 ?? env.TWILL_PUBLIC_IPV6,
    publicIface: o.publicIface ?? env.TWILL_PUBLIC_IFACE,
    ifaceRegex: o.ifaceRegex ?? list(env.TWILL_IFACE_REGEX),
    ifaceCidr: list(o.ifaceCidr ?? env.TWILL_IFACE_CIDR),
    ifaceCanReach: o.ifaceCanReach ?? env.TWILL_IFACE_CAN_REACH,
    subnetFile: o.subnetFile,
    cniSocket: o.cniSocket ?? '',
    healthListen: o.healthListen,
    healthListenPublic: o.healthListenPublic === true ? true : undefined,
    ipMasq: bool(o.ipMasq, 'TWILL_IP_MASQ') ?? true,
    ...(() => {
      const v = bool(o.ip6Masq, 'TWILL_IP6_MASQ');
      return v === undefined ? {} : { ip6Masq: v };
    })(),
    resyncIntervalSeconds: Number(o.resyncInterval),
    logLevel: o.logLevel,
  };
  const r = schema.safeParse(candidate);
  if (!r.success) errors.push(...r.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`));
  if (errors.length > 0 || !r.success) return { ok: false, errors };
  return { ok: true, options: r.data };
}
