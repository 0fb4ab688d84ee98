// png.js — encode a label map as a 16-bit greyscale PNG (the server's canonical label image).
// Canvas cannot write 16-bit PNGs, so the file is assembled here: IHDR, one zlib IDAT
// (CompressionStream "deflate" is the zlib format PNG needs), IEND, each with its CRC.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes, crc = 0xffffffff) {
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return crc;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0);
  return out;
}

async function zlib(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Encode ids (Uint32Array/Uint16Array, row-major, width*height) as a 16-bit grey PNG Blob.
 * Throws when an id does not fit in 16 bits (the caller relabels first).
 */
export async function encodeLabelPng(ids, width, height) {
  const stride = 1 + width * 2;
  const raw = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    let o = y * stride;
    raw[o++] = 0; // filter: none (label runs compress well as they are)
    for (let x = 0, i = y * width; x < width; x++, i++) {
      const v = ids[i];
      if (v > 0xffff) throw new RangeError(`id ${v} does not fit a 16-bit PNG`);
      raw[o++] = v >>> 8;
      raw[o++] = v & 0xff;
    }
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr[8] = 16; // bit depth
  ihdr[9] = 0;  // colour type: greyscale
  const signature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const idat = await zlib(raw);
  return new Blob([signature, chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", new Uint8Array(0))], { type: "image/png" });
}

/** Ids made 1..N in order of first appearance when the largest does not fit 16 bits. */
export function compactIds(ids) {
  let max = 0;
  for (let i = 0; i < ids.length; i++) if (ids[i] > max) max = ids[i];
  if (max <= 0xffff) return ids;
  const map = new Map();
  const out = new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i];
    if (v === 0) continue;
    let n = map.get(v);
    if (n === undefined) { n = map.size + 1; map.set(v, n); }
    out[i] = n;
  }
  return out;
}
