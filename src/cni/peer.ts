/**
 * Who is on the other end of a connection to the agent's CNI socket, from the kernel: SO_PEERCRED,
 * the pid/uid/gid the kernel recorded when the caller called connect(2). Node has no getsockopt, so a
 * perl one-liner does it (perl-base is Essential on Debian; `getsockopt` is a perl builtin, no module
 * load): the connection is handed to it as its stdin and it prints "pid uid gid". Costs one spawn.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Socket } from 'node:net';

export interface PeerCred {
  /** 0 when the caller is in a PID namespace the agent cannot see. */
  pid: number;
  uid: number;
  gid: number;
}

/** [SOL_SOCKET, SO_PEERCRED] per Linux architecture (asm-generic, powerpc, mips). */
const PEERCRED_OPTION: Readonly<Record<string, readonly [number, number]>> = {
  x64: [1, 17],
  ia32: [1, 17],
  arm64: [1, 17],
  arm: [1, 17],
  riscv64: [1, 17],
  s390x: [1, 17],
  loong64: [1, 17],
  ppc64: [1, 21],
  ppc: [1, 21],
  mips: [0xffff, 18],
  mipsel: [0xffff, 18],
};

const SCRIPT = 'my $c = getsockopt(STDIN, $ARGV[0], $ARGV[1]); defined $c or exit 1; print join(" ", unpack("lLL", $c)), "\\n"';
const HELPER_TIMEOUT_MS = 5000;

/** `struct ucred` as the helper prints it; undefined for anything else. */
export function parsePeerCred(text: string): PeerCred | undefined {
  const m = /^(\d{1,10}) (\d{1,10}) (\d{1,10})\n?$/.exec(text);
  if (!m) return undefined;
  return { pid: Number(m[1]), uid: Number(m[2]), gid: Number(m[3]) };
}

/**
 * The caller's credentials, or undefined when the kernel cannot be asked here (unknown architecture,
 * no perl, helper failure). Node pauses a stream it hands to a child as stdio: the caller resumes
 * reading once its listeners are in place. The helper reads nothing from the socket.
 */
export function peerCredentials(conn: Socket, arch: string = process.arch): Promise<PeerCred | undefined> {
  const opt = PEERCRED_OPTION[arch];
  if (opt === undefined) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let out = '';
    try {
      const child = spawn('perl', ['-e', SCRIPT, String(opt[0]), String(opt[1])], {
        stdio: [conn, 'pipe', 'ignore'],
        // No PERL5OPT/PERL5LIB from the agent's environment.
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
        timeout: HELPER_TIMEOUT_MS,
      });
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', () => resolve(undefined));
      child.on('close', (code) => resolve(code === 0 ? parsePeerCred(out) : undefined));
    } catch {
      resolve(undefined);
    }
  });
}

/** `readlink /proc/<pid>/ns/net`, or undefined when that process is not visible (gone, other PID namespace). */
export function netnsOf(pid: number): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}
