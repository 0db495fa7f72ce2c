// Checks a FHIR R4 Bundle twice: with the `fhir` package's validator (the R4
// structure definitions: types, cardinalities, unknown properties), and with
// structure checks of our own on every resource (ids, references, the codes
// and fields docs/RECORDS.md promises).

import { expect } from 'chai';
import fhirPackage from 'fhir';
import type { Bundle, FhirResource } from '../../src/records/fhir.js';

const { Fhir } = fhirPackage as unknown as { Fhir: new () => { validate(resource: unknown, options?: { errorOnUnexpected?: boolean }): { valid: boolean; messages: { location?: string; severity: string; message: string }[] } } };
const validator = new Fhir();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export function validateBundle(bundle: Bundle): void {
  const result = validator.validate(bundle, { errorOnUnexpected: true });
  const errors = result.messages.filter((m) => m.severity === 'error');
  expect(errors, JSON.stringify(errors.slice(0, 5))).to.deep.equal([]);
  expect(result.valid).to.equal(true);

  const byUrl = new Map(bundle.entry.map((e) => [e.fullUrl, e.resource]));
  expect(byUrl.size, 'fullUrls are unique').to.equal(bundle.entry.length);
  for (const entry of bundle.entry) {
    const r = entry.resource;
    expect(r.id).to.match(UUID);
    expect(entry.fullUrl).to.equal(`urn:uuid:${r.id}`);
    if (bundle.type === 'transaction') expect(entry.request).to.deep.equal({ method: 'PUT', url: `${r.resourceType}/${r.id}` });
    else expect(entry.request).to.equal(undefined);
    // Every reference points at an entry of this Bundle.
    for (const reference of referencesIn(r)) expect(byUrl.has(reference), `${r.resourceType} refers to ${reference}`).to.equal(true);
    checkResource(r, byUrl);
  }
}

function referencesIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(referencesIn);
  if (typeof value !== 'object' || value === null) return [];
  const out: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (key === 'reference' && typeof v === 'string') out.push(v);
    else out.push(...referencesIn(v));
  }
  return out;
}

function checkPeriod(p: unknown): void {
  const period = p as { start?: string; end?: string };
  expect(period.start).to.match(INSTANT);
  if (period.end !== undefined) {
    expect(period.end).to.match(INSTANT);
    expect(Date.parse(period.end)).to.be.at.least(Date.parse(period.start!));
  }
}

type Coding = { system: string; code: string };

function checkResource(r: FhirResource, byUrl: Map<string, FhirResource>): void {
  const any = r as Record<string, any>;
  switch (r.resourceType) {
    case 'Encounter':
      expect(any.class).to.include({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR' });
      checkPeriod(any.period);
      for (const p of any.participant ?? []) {
        checkPeriod(p.period);
        expect(p.individual.display).to.be.a('string');
      }
      break;
    case 'Device':
      expect(any.identifier[0].value).to.be.a('string');
      break;
    case 'DeviceMetric':
      expect(any.type.coding[0].system).to.equal('urn:iso:std:iso:11073:10101');
      expect(byUrl.get(any.source.reference)?.resourceType).to.equal('Device');
      expect(any.category).to.equal('measurement');
      if (any.unit) expect(any.unit.coding[0].system).to.equal('http://unitsofmeasure.org');
      break;
    case 'Observation': {
      expect(any.status).to.equal('final');
      expect(byUrl.get(any.encounter.reference)?.resourceType).to.equal('Encounter');
      const codings = any.code.coding as Coding[];
      expect(codings.some((c) => c.system === 'urn:iso:std:iso:11073:10101'), 'an MDC coding').to.equal(true);
      const category = (any.category[0].coding as Coding[])[0]!.code;
      if (category === 'vital-signs') {
        expect(any.effectiveDateTime).to.match(INSTANT);
        if (any.valueQuantity) expect(any.valueQuantity.system).to.equal('http://unitsofmeasure.org');
        else expect(any.dataAbsentReason).to.be.an('object');
        expect(['DeviceMetric', 'Device']).to.include(byUrl.get(any.device.reference)?.resourceType);
      } else if (any.valueSampledData) {
        checkPeriod(any.effectivePeriod);
        const sd = any.valueSampledData;
        expect(sd.period).to.be.above(0);
        expect(sd.dimensions).to.equal(1);
        expect(sd.origin.system).to.equal('http://unitsofmeasure.org');
        expect(sd.data).to.match(/^(-?\d+|E)( (-?\d+|E))*$/);
      } else {
        expect(category).to.equal('alarm');
        checkPeriod(any.effectivePeriod);
        expect(any.valueString).to.be.a('string');
        expect(any.component[0].valueCodeableConcept.coding[0].code).to.be.oneOf(['low', 'medium', 'high']);
      }
      break;
    }
    case 'Media':
      expect(any.content.contentType).to.be.a('string');
      break;
    default:
      expect.fail(`unexpected resource ${r.resourceType}`);
  }
}
