/**
 * An in-memory kernel for tests of the dataplane and the agent: it executes the exact batch lines
 * render-ip.ts produces (anything else is an error), with the kernel behaviours the reconciler
 * depends on: `link del` takes the link's addresses, neighbours, FDB entries and routes with it;
 * `route add` refuses a destination that already has a route of any protocol; a failing `neigh`
 * line ends the whole `ip` batch, as the real `ip` does (it exits), while other failing lines are
 * skipped (`-force`). IPv6 addresses, neighbours and routes (the family from the line's addresses, as
 * `ip -batch` does; an IPv6 route without a metric gets 1024) are held in their own lists. Tests may edit `state` directly to model hand changes and foreign objects.
 */
import { ROUTE_PROTO, VXLAN_DEVICE_PREFIX } from '../common/constants.js';
import { parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';
import { ipEquals, parseIpOf, parsePrefixOf, type Ip, type IpPrefix } from '../net/ip.js';
import type { ActualState, KernelPort, LineFailure, ObservedLink, ObservedNeigh, ObservedNeigh6, ObservedRoute, ObservedRoute6, Program } from './state.js';

export interface FakeRoute extends ObservedRoute {
  readonly proto: number;
}

export interface FakeRoute6 extends ObservedRoute6 {
  readonly proto: number;
}

export interface FakeState {
  links: ObservedLink[];
  addresses: { dev: string; address: number; prefix: number }[];
  neighbours: ObservedNeigh[];
  fdb: { dev: string; mac: string; dst: number }[];
  routes: FakeRoute[];
  addresses6: { dev: string; address: Ip; prefix: number; nodad: boolean }[];
  neighbours6: ObservedNeigh6[];
  routes6: FakeRoute6[];
}

class LineError extends Error {
  constructor(
    message: string,
    readonly fatal = false,
  ) {
    super(message);
  }
}

export class FakeKernel implements KernelPort {
  state: FakeState = { links: [], addresses: [], neighbours: [], fdb: [], routes: [], addresses6: [], neighbours6: [], routes6: [] };
  /** Lines matching any of these fail with "injected failure". */
  failOn: RegExp[] = [];
  /** Every batch executed: [program, lines]. */
  readonly batches: [Program, string[]][] = [];

  /** A non-Twill link (the underlay, a bridge...). */
  addForeignLink(name: string, kind = 'veth'): void {
    this.state.links.push({ name, kind, up: true, mtu: 1500, mac: '02:00:00:00:00:01' });
  }

  async read(): Promise<ActualState> {
    const ours = new Set(this.state.links.filter((l) => l.name.startsWith(VXLAN_DEVICE_PREFIX)).map((l) => l.name));
    const clone = <T>(x: T): T => structuredClone(x);
    return {
      links: clone(this.state.links.filter((l) => ours.has(l.name))),
      addresses: clone(this.state.addresses.filter((a) => ours.has(a.dev))),
      neighbours: clone(this.state.neighbours.filter((n) => ours.has(n.dev))),
      fdb: clone(this.state.fdb.filter((f) => ours.has(f.dev))),
      routes: this.state.routes
        .filter((r) => r.proto === ROUTE_PROTO)
        .map(({ proto: _proto, ...r }) => clone(r)),
      addresses6: this.state.addresses6.filter((a) => ours.has(a.dev)).map(({ nodad: _nodad, ...a }) => clone(a)),
      neighbours6: clone(this.state.neighbours6.filter((n) => ours.has(n.dev))),
      routes6: this.state.routes6
        .filter((r) => r.proto === ROUTE_PROTO)
        .map(({ proto: _proto, ...r }) => clone(r)),
    };
  }

  async execute(program: Program, lines: readonly string[]): Promise<LineFailure[]> {
    this.batches.push([program, [...lines]]);
    const failures: LineFailure[] = [];
    for (const line of lines) {
      try {
        if (this.failOn.some((re) => re.test(line))) throw new LineError('injected failure', line.startsWith('neigh '));
        if (program === 'ip') this.ip(line.split(' '));
        else this.bridge(line.split(' '));
      } catch (e) {
        if (!(e instanceof LineError)) throw e;
        if (e.fatal) {
          failures.push({ line: undefined, message: `${e.message} (batch aborted)` });
          break;
        }
        failures.push({ line, message: e.message });
      }
    }
    return failures;
  }

  private link(name: string | undefined): ObservedLink {
    const l = this.state.links.find((x) => x.name === name);
    if (l === undefined) throw new LineError(`Cannot find device "${name}"`);
    return l;
  }

  private ip(w: string[]): void {
    const [obj, op] = w;
    const arg = (key: string): string | undefined => {
      const i = w.indexOf(key, 2);
      return i < 0 ? undefined : w[i + 1];
    };
    if (obj === 'link' && op === 'add') {
      const name = w[2] as string;
      if (this.state.links.some((l) => l.name === name)) throw new LineError('RTNETLINK answers: File exists');
      this.link(arg('dev'));
      this.state.links.push({
        name,
        kind: 'vxlan',
        up: w.includes('up'),
        mtu: Number(arg('mtu')),
        mac: arg('address') as string,
        vxlan: {
          vni: Number(arg('id')),
          port: Number(arg('dstport')),
          local: ip4(arg('local')),
          dev: arg('dev'),
          learning: !w.includes('nolearning'),
          udpCsum: w.includes('udpcsum'),
        },
      });
    } else if (obj === 'link' && op === 'set') {
      const l = this.link(arg('dev'));
      Object.assign(l, { mac: arg('address') ?? l.mac, mtu: Number(arg('mtu') ?? l.mtu), up: w.includes('up') || l.up });
    } else if (obj === 'link' && op === 'del') {
      const name = this.link(arg('dev')).name;
      const s = this.state;
      s.links = s.links.filter((l) => l.name !== name);
      s.addresses = s.addresses.filter((a) => a.dev !== name);
      s.neighbours = s.neighbours.filter((n) => n.dev !== name);
      s.fdb = s.fdb.filter((f) => f.dev !== name);
      s.routes = s.routes.filter((r) => r.dev !== name);
      s.addresses6 = s.addresses6.filter((a) => a.dev !== name);
      s.neighbours6 = s.neighbours6.filter((n) => n.dev !== name);
      s.routes6 = s.routes6.filter((r) => r.dev !== name);
    } else if (obj === 'address' && (w[2] ?? '').includes(':')) {
      const dev = this.link(arg('dev')).name;
      const c = parsePrefixOf(6, w[2] as string) ?? fail('Error: any valid prefix is expected');
      const same = (a: FakeState['addresses6'][number]) => a.dev === dev && ipEquals(a.address, c.address) && a.prefix === c.prefix;
      const exists = this.state.addresses6.some(same);
      if (op === 'replace' && !exists) this.state.addresses6.push({ dev, address: c.address, prefix: c.prefix, nodad: w.includes('nodad') });
      else if (op === 'del') {
        if (!exists) throw new LineError('RTNETLINK answers: Cannot assign requested address');
        this.state.addresses6 = this.state.addresses6.filter((a) => !same(a));
      }
    } else if (obj === 'neigh' && (w[2] ?? '').includes(':')) {
      try {
        const dev = this.link(arg('dev')).name;
        const addr = parseIpOf(6, w[2] as string) ?? fail(`Error: inet6 address is expected rather than "${w[2]}".`);
        const rest = this.state.neighbours6.filter((n) => !(n.dev === dev && ipEquals(n.ip, addr)));
        if (op === 'del' && rest.length === this.state.neighbours6.length) throw new LineError('RTNETLINK answers: No such file or directory');
        if (op === 'replace') rest.push({ dev, ip: addr, mac: arg('lladdr') as string, permanent: true });
        this.state.neighbours6 = rest;
      } catch (e) {
        throw e instanceof LineError ? new LineError(e.message, true) : e;
      }
    } else if (obj === 'route' && w.slice(2, 4).some((x) => x.includes(':'))) {
      this.route6(op, w);
    } else if (obj === 'address') {
      const dev = this.link(arg('dev')).name;
      const c = parseCidr(w[2] as string) ?? fail('bad address');
      const same = (a: FakeState['addresses'][number]) => a.dev === dev && a.address === c.address && a.prefix === c.prefix;
      const exists = this.state.addresses.some(same);
      if (op === 'replace' && !exists) this.state.addresses.push({ dev, address: c.address, prefix: c.prefix });
      else if (op === 'del') {
        if (!exists) throw new LineError('RTNETLINK answers: Cannot assign requested address');
        this.state.addresses = this.state.addresses.filter((a) => !same(a));
      }
    } else if (obj === 'neigh') {
      try {
        const dev = this.link(arg('dev')).name;
        const addr = ip4(w[2]);
        const rest = this.state.neighbours.filter((n) => !(n.dev === dev && n.ip === addr));
        if (op === 'del' && rest.length === this.state.neighbours.length) throw new LineError('RTNETLINK answers: No such file or directory');
        if (op === 'replace') rest.push({ dev, ip: addr, mac: arg('lladdr') as string, permanent: true });
        this.state.neighbours = rest;
      } catch (e) {
        throw e instanceof LineError ? new LineError(e.message, true) : e;
      }
    } else if (obj === 'route') {
      this.route(op, w);
    } else {
      throw new LineError(`fake kernel: unsupported ip line: ${w.join(' ')}`);
    }
  }

  private route(op: string | undefined, w: string[]): void {
    const arg = (key: string): string | undefined => {
      const i = w.indexOf(key, 2);
      return i < 0 ? undefined : w[i + 1];
    };
    const hasType = op === 'del' && !/^\d/.test(w[2] ?? '');
    const dst = cidr(w[hasType ? 3 : 2]);
    const metric = Number(arg('metric') ?? 0);
    const proto = Number(arg('proto') ?? 3);
    const sameKey = (r: FakeRoute) => r.dst.network === dst.network && r.dst.prefix === dst.prefix && r.metric === metric;
    if (op === 'del') {
      const i = this.state.routes.findIndex((r) => sameKey(r) && r.proto === proto);
      if (i < 0) throw new LineError('RTNETLINK answers: No such process');
      this.state.routes.splice(i, 1);
      return;
    }
    const dev = this.link(arg('dev')).name;
    const route: FakeRoute = { dst, type: 'unicast', via: ip4(arg('via')), dev, onlink: w.includes('onlink'), metric, proto };
    const i = this.state.routes.findIndex(sameKey);
    if (op === 'add' && i >= 0) throw new LineError('RTNETLINK answers: File exists');
    if (i >= 0) this.state.routes[i] = route;
    else this.state.routes.push(route);
  }

  /** IPv6 routes: no metric means 1024, as in the kernel. */
  private route6(op: string | undefined, w: string[]): void {
    const arg = (key: string): string | undefined => {
      const i = w.indexOf(key, 2);
      return i < 0 ? undefined : w[i + 1];
    };
    const hasType = op === 'del' && !(w[2] ?? '').includes(':');
    const p = parsePrefixOf(6, w[hasType ? 3 : 2] ?? '', true) ?? fail(`Error: invalid prefix "${w[hasType ? 3 : 2]}"`);
    const dst: IpPrefix = { family: 6, network: p.network, prefix: p.prefix };
    const metric = Number(arg('metric') ?? 1024);
    const proto = Number(arg('proto') ?? 3);
    const sameKey = (r: FakeRoute6) => r.dst.network === dst.network && r.dst.prefix === dst.prefix && r.metric === metric;
    if (op === 'del') {
      const i = this.state.routes6.findIndex((r) => sameKey(r) && r.proto === proto);
      if (i < 0) throw new LineError('RTNETLINK answers: No such process');
      this.state.routes6.splice(i, 1);
      return;
    }
    const dev = this.link(arg('dev')).name;
    const via = parseIpOf(6, arg('via') ?? '') ?? fail(`Error: inet6 address is expected rather than "${arg('via')}".`);
    const route: FakeRoute6 = { dst, type: 'unicast', via, dev, onlink: w.includes('onlink'), metric, proto };
    const i = this.state.routes6.findIndex(sameKey);
    if (op === 'add' && i >= 0) throw new LineError('RTNETLINK answers: File exists');
    if (i >= 0) this.state.routes6[i] = route;
    else this.state.routes6.push(route);
  }

  private bridge(w: string[]): void {
    const [obj, op, mac] = w;
    const arg = (key: string): string | undefined => {
      const i = w.indexOf(key, 3);
      return i < 0 ? undefined : w[i + 1];
    };
    if (obj !== 'fdb' || mac === undefined || !w.includes('self')) throw new LineError(`fake kernel: unsupported bridge line: ${w.join(' ')}`);
    const l = this.link(arg('dev'));
    if (l.kind !== 'vxlan') throw new LineError('RTNETLINK answers: Operation not supported');
    const dst = ip4(arg('dst'));
    if (op === 'del') {
      const i = this.state.fdb.findIndex((f) => f.dev === l.name && f.mac === mac && f.dst === dst);
      if (i < 0) throw new LineError('RTNETLINK answers: No such file or directory');
      this.state.fdb.splice(i, 1);
    } else if (op === 'replace') {
      const existing = this.state.fdb.find((f) => f.dev === l.name && f.mac === mac);
      if (existing) existing.dst = dst;
      else this.state.fdb.push({ dev: l.name, mac, dst });
    } else {
      throw new LineError(`fake kernel: unsupported fdb op ${String(op)}`);
    }
  }
}

function fail(message: string): never {
  throw new LineError(message);
}

function ip4(text: string | undefined): number {
  return parseIPv4(text ?? '') ?? fail(`Error: inet address is expected rather than "${text}".`);
}

function cidr(text: string | undefined): Cidr {
  const c = parseCidr(text ?? '', true);
  if (c === undefined) fail(`Error: invalid prefix "${text}"`);
  return { network: c.network, prefix: c.prefix };
}
