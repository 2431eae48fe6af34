// pretest: make sure the system programs the suite drives for real are installed.
// Installs them with apt-get when running as root on Debian; otherwise says what to install.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const onPath = (cmd) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

const missing = [];
if (!onPath('redis-server')) missing.push('redis-server');
if (!existsSync('/usr/bin/chromium')) missing.push('chromium');
// The Redis TLS tests make their certificates with it.
if (!onPath('openssl')) missing.push('openssl');
// The chaos soak puts it in front of the instances.
if (!onPath('haproxy') && !existsSync('/usr/sbin/haproxy')) missing.push('haproxy');
if (missing.length === 0) process.exit(0);

const canApt = process.getuid?.() === 0 && onPath('apt-get');
if (!canApt) {
  console.error(`herald tests need: ${missing.join(', ')} (install with: sudo apt-get install -y ${missing.join(' ')})`);
  process.exit(1);
}
console.log(`installing ${missing.join(', ')} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
