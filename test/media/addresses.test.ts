import { expect } from 'chai';
import type { networkInterfaces } from 'node:os';
import { INGEST_RECV_BUFFER_BYTES, ingestListenInfos, reachableAddress, webRtcListenInfos } from '../../src/media/addresses.js';
import { iceConsentTimeoutSeconds } from '../../src/media/iceConsent.js';
import { loadConfig } from '../../src/config/load.js';

const ward: ReturnType<typeof networkInterfaces> = {
  lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '255.0.0.0', mac: '00:00:00:00:00:00', cidr: '127.0.0.1/8' }],
  eth0: [
    { address: '10.20.30.40', family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: '52:54:00:00:00:01', cidr: '10.20.30.40/24' },
    { address: 'fe80::1', family: 'IPv6', internal: false, netmask: 'ffff:ffff:ffff:ffff::', mac: '52:54:00:00:00:01', cidr: 'fe80::1/64', scopeid: 2 },
  ],
};

describe('media addresses (what ICE candidates and ingest replies announce)', () => {
  it('never announces 0.0.0.0: an unspecified listen address becomes every local IPv4 address', () => {
    const infos = webRtcListenInfos('0.0.0.0', null, 40000, ward);
    expect(infos.map((i) => `${i.protocol}:${i.ip}:${i.port}`)).to.deep.equal([
      'udp:127.0.0.1:40000',
      'tcp:127.0.0.1:40000',
      'udp:10.20.30.40:40000',
      'tcp:10.20.30.40:40000',
    ]);
    expect(infos.every((i) => i.announcedAddress === undefined && i.announcedIp === undefined)).to.equal(true);
  });

  it('listens where told and announces the configured public address', () => {
    expect(webRtcListenInfos('0.0.0.0', '203.0.113.7', 40001, ward)).to.deep.equal([
      { protocol: 'udp', ip: '0.0.0.0', announcedAddress: '203.0.113.7', port: 40001 },
      { protocol: 'tcp', ip: '0.0.0.0', announcedAddress: '203.0.113.7', port: 40001 },
    ]);
    expect(webRtcListenInfos('127.0.0.1', null, 40002, ward).map((i) => i.ip)).to.deep.equal(['127.0.0.1', '127.0.0.1']);
  });

  it('tells an ingest sender an address it can reach', () => {
    expect(reachableAddress('0.0.0.0', null, ward)).to.equal('10.20.30.40');
    expect(reachableAddress('0.0.0.0', '203.0.113.7', ward)).to.equal('203.0.113.7');
    expect(reachableAddress('127.0.0.1', null, ward)).to.equal('127.0.0.1');
    expect(reachableAddress('0.0.0.0', null, { lo: ward.lo })).to.equal('127.0.0.1');
  });

  it("gives an ingest UDP ports from its worker's slice and a receive buffer sized for keyframe bursts", () => {
    const { listenInfo, rtcpListenInfo } = ingestListenInfos('0.0.0.0', '203.0.113.7', { min: 45000, max: 47499 });
    expect(listenInfo).to.deep.equal({
      protocol: 'udp',
      ip: '0.0.0.0',
      announcedAddress: '203.0.113.7',
      portRange: { min: 45000, max: 47499 },
      recvBufferSize: INGEST_RECV_BUFFER_BYTES,
    });
    // RTCP: same address and slice, the kernel's default buffer.
    expect(rtcpListenInfo).to.deep.equal({ protocol: 'udp', ip: '0.0.0.0', announcedAddress: '203.0.113.7', portRange: { min: 45000, max: 47499 } });
    expect(ingestListenInfos('127.0.0.1', null, { min: 1, max: 2 }).listenInfo).to.not.have.property('announcedAddress');
  });
});

describe('ICE consent timeout (silent peers closed within 30 s)', () => {
  it('gives consent what iceDisconnectedTimeoutMs leaves of 30 s, never under mediasoup\'s 10 s', () => {
    expect(iceConsentTimeoutSeconds(15_000)).to.equal(15);
    expect(iceConsentTimeoutSeconds(1_000)).to.equal(29);
    expect(iceConsentTimeoutSeconds(20_000)).to.equal(10);
    for (const ms of [1_000, 7_500, 15_000, 20_000]) expect(iceConsentTimeoutSeconds(ms) + ms / 1000).to.be.at.most(30);
  });

  it('refuses an iceDisconnectedTimeoutMs that would push a silent peer past 30 s', () => {
    const load = (iceDisconnectedTimeoutMs: number) =>
      loadConfig({ env: {}, overrides: { auth: { demo: true }, media: { iceDisconnectedTimeoutMs } } });
    expect(load(20_000).media.iceDisconnectedTimeoutMs).to.equal(20_000);
    expect(() => load(20_001)).to.throw(/media\.iceDisconnectedTimeoutMs/);
  });
});
