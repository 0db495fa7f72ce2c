import { Counter, Gauge } from 'prom-client';

// Records metrics (docs/RECORDS.md, "Operations"); labels from fixed sets only.

export const recordsQueueDepth = new Gauge({
  name: 'hoichan_records_queue_depth',
  help: 'Record writes waiting for the database',
});

export const recordsDropped = new Counter({
  name: 'hoichan_records_dropped_total',
  help: 'Record writes dropped because the write queue was full (class: bulk = numerics, waveforms, counters; essential = sessions, participants, alarms)',
  labelNames: ['class'] as const,
});

export const recordsWriteErrors = new Counter({
  name: 'hoichan_records_write_errors_total',
  help: 'Record writes the database refused (logged without their contents)',
});

export const recordsFhirDeliveries = new Counter({
  name: 'hoichan_records_fhir_deliveries_total',
  help: 'FHIR transaction POSTs from the outbox, by outcome (accepted, refused, failed)',
  labelNames: ['outcome'] as const,
});
