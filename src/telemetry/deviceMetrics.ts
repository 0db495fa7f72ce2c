import { Counter, Gauge, Histogram, register, type Metric } from 'prom-client';

// Device-flow metrics on prom-client's default registry (the one /metrics
// serves). Labels are bounded (protocol, device type, site): never a peer or
// a reading. Created once per process, even when a test starts several hubs.

function once<T extends Metric>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

export const deviceMetrics = {
  readingsReceived: once(
    'hoichan_device_readings_received_total',
    () =>
      new Counter({
        name: 'hoichan_device_readings_received_total',
        help: 'Device readings the hub accepted from site agents (duplicates excluded)',
        labelNames: ['protocol', 'device_type'] as const,
      }),
  ),
  readingsDelivered: once(
    'hoichan_device_readings_delivered_total',
    () =>
      new Counter({
        name: 'hoichan_device_readings_delivered_total',
        help: 'Device readings emitted to conference peers (counted once per reading, not per peer)',
        labelNames: ['protocol', 'device_type'] as const,
      }),
  ),
  parseErrors: once(
    'hoichan_device_parse_errors_total',
    () =>
      new Counter({
        name: 'hoichan_device_parse_errors_total',
        help: 'Device frames the site agents\u2019 drivers rejected, as reported up the uplink (protocol: a known driver protocol, or other)',
        labelNames: ['protocol'] as const,
      }),
  ),
  uplinkLag: once(
    'hoichan_device_uplink_lag_seconds',
    () =>
      new Histogram({
        name: 'hoichan_device_uplink_lag_seconds',
        help: 'Agent receipt of a reading (mapped to hub clock) to hub receipt',
        buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200],
      }),
  ),
  fanout: once(
    'hoichan_device_fanout_seconds',
    () =>
      new Histogram({
        name: 'hoichan_device_fanout_seconds',
        help: 'Hub receipt of a batch to its emit to the conference peers',
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      }),
  ),
  uplinkRefused: once(
    'hoichan_uplink_refused_total',
    () =>
      new Counter({
        name: 'hoichan_uplink_refused_total',
        help: 'Site-agent uplink messages the hub refused, by error code (rate_limited: the site sends faster than devices.uplinkReadingsPerSecond or uplinkBytesPerSecond)',
        labelNames: ['code'] as const,
      }),
  ),
  readingsDiscarded: once(
    'hoichan_device_readings_discarded_total',
    () =>
      new Counter({
        name: 'hoichan_device_readings_discarded_total',
        help: 'Device readings the hub acked but did not deliver: previous_session (journaled before the device moved to another conference), slow_reader (waveforms withheld from a peer whose socket is backed up, counted per peer)',
        labelNames: ['reason'] as const,
      }),
  ),
  journalDepth: once(
    'hoichan_agent_journal_depth',
    () =>
      new Gauge({
        name: 'hoichan_agent_journal_depth',
        help: 'Readings journaled at a site agent and not yet acknowledged by the hub',
        labelNames: ['site'] as const,
      }),
  ),
};
