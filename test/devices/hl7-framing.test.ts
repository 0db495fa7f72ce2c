import { MllpDeframer, mllpFrame } from '../../src/devices/hl7/framing.js';
import { expect, frame, PCD01_EXAMPLE } from './hl7-support.js';

const text = (frames: Buffer[]) => frames.map((f) => f.toString('utf8'));

describe('hl7 MLLP deframer', () => {
  it('takes one frame, several frames in one chunk, and a frame split byte by byte', () => {
    const d = new MllpDeframer();
    expect(text(d.push(frame('A')).frames)).to.deep.equal(['A']);
    expect(text(d.push(Buffer.concat([frame('B'), frame('C'), frame('D')])).frames)).to.deep.equal(['B', 'C', 'D']);
    const bytes = frame(PCD01_EXAMPLE);
    const out: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...d.push(bytes.subarray(i, i + 1)).frames);
    expect(text(out)).to.deep.equal([PCD01_EXAMPLE]);
    expect(d.pendingBytes).to.equal(0);
  });

  it('discards and counts garbage between frames and resynchronises', () => {
    const d = new MllpDeframer();
    const r = d.push(Buffer.concat([Buffer.from('noise'), frame('A'), Buffer.from('\n\n'), frame('B')]));
    expect(text(r.frames)).to.deep.equal(['A', 'B']);
    expect(r.discarded).to.equal(7);
  });

  it('drops a frame cut short by the next start byte', () => {
    const d = new MllpDeframer();
    const first = d.push(Buffer.from('\x0bMSH|trunc', 'latin1'));
    expect(first.frames).to.have.length(0);
    const second = d.push(frame('GOOD'));
    expect(text(second.frames)).to.deep.equal(['GOOD']);
    expect(second.discarded).to.equal(10); // VT + 'MSH|trunc'
  });

  it('handles the end bytes split across chunks', () => {
    const d = new MllpDeframer();
    expect(d.push(Buffer.from('\x0bA\x1c', 'latin1')).frames).to.have.length(1);
    const r = d.push(Buffer.from('\r\x0bB\x1c\r', 'latin1'));
    expect(text(r.frames)).to.deep.equal(['B']);
    expect(r.discarded).to.equal(0);
  });

  it('discards frames over the size cap and keeps going', () => {
    const d = new MllpDeframer(1024);
    const big = frame('X'.repeat(5000));
    const r1 = d.push(big.subarray(0, 3000));
    const r2 = d.push(Buffer.concat([big.subarray(3000), frame('ok')]));
    expect(r1.frames.length + r2.frames.length).to.equal(1);
    expect(text(r2.frames)).to.deep.equal(['ok']);
    expect(r2.oversize).to.equal(1);
    expect(r1.discarded + r2.discarded).to.equal(5002);
  });

  it('frames text as VT message FS CR', () => {
    expect([...mllpFrame('é')]).to.deep.equal([0x0b, 0xc3, 0xa9, 0x1c, 0x0d]);
  });
});
