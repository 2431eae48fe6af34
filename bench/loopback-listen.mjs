// Preloaded into the y-webrtc reference server (node --import; the tests and bench/ywebrtc.mjs): whatever port it asks for,
// it listens on a free loopback port and prints it, so tests never bind a fixed or public port.
import http from 'node:http';

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function () {
  this.once('listening', () => process.stdout.write(`LISTENING ${this.address().port}\n`));
  return listen.call(this, 0, '127.0.0.1');
};
