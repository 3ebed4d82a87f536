import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ensureRtProtos, renderRtProtos } from './rt-protos.js';

describe('rt_protos registration', () => {
  it('names 84 twill and 85 twill-cni, in iproute2 format', () => {
    const entries = renderRtProtos().split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split('\t'));
    assert.deepEqual(entries, [['84', 'twill'], ['85', 'twill-cni']]);
  });
  it('writes when missing or different, leaves an identical file alone, skips without iproute2 config', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'twill-rtp-'));
    try {
      const dir = path.join(root, 'rt_protos.d');
      assert.deepEqual(ensureRtProtos(dir), { path: path.join(dir, 'twill.conf'), written: true });
      assert.equal(fs.readFileSync(path.join(dir, 'twill.conf'), 'utf8'), renderRtProtos());
      assert.deepEqual(ensureRtProtos(dir), { path: path.join(dir, 'twill.conf'), written: false });
      fs.writeFileSync(path.join(dir, 'twill.conf'), '84 other\n');
      assert.equal((ensureRtProtos(dir) as { written: boolean }).written, true);
      assert.deepEqual(fs.readdirSync(dir), ['twill.conf'], 'no temp file left');
      assert.match((ensureRtProtos(path.join(root, 'none', 'rt_protos.d')) as { skipped: string }).skipped, /does not exist/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
