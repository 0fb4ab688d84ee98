// png.js — encode a label map as a 16-bit greyscale PNG (the server's canonical label image),
// and decode the server's stored ones (sent as they are: no decoding and re-compressing there).
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

async function inflate(parts) {
  const stream = new Blob(parts).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Decode a 16-bit greyscale, non-interlaced PNG (the server's stored label image) into
 * ids: {width, height, ids: Uint16Array}. The browser inflates (native); rows are
 * unfiltered here (all five PNG filters). Throws on any other kind of PNG.
 */
export async function decodeLabelPng(buffer) {
  const bytes = new Uint8Array(buffer), view = new DataView(buffer);
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 33 || signature.some((b, k) => bytes[k] !== b)) throw new Error("not a PNG");
  let pos = 8, width = 0, height = 0;
  const idat = [];
  while (pos + 8 <= bytes.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (type === "IHDR") {
      width = view.getUint32(pos + 8); height = view.getUint32(pos + 12);
      const [depth, colour, , , interlace] = bytes.subarray(pos + 16, pos + 21);
      if (depth !== 16 || colour !== 0 || interlace !== 0) throw new Error("not a 16-bit grey, non-interlaced PNG");
    } else if (type === "IDAT") idat.push(bytes.subarray(pos + 8, pos + 8 + len));
    else if (type === "IEND") break;
    pos += 12 + len;
  }
  const raw = await inflate(idat);
  const stride = width * 2;
  if (!width || raw.length !== (stride + 1) * height) throw new Error("PNG image data does not match its size");
  const ids = new Uint16Array(width * height);
  let prev = new Uint8Array(stride), cur = new Uint8Array(stride);
  for (let y = 0, o = 0; y < height; y++, o += stride + 1) {
    const filter = raw[o], line = raw.subarray(o + 1, o + 1 + stride);
    switch (filter) {
      case 0: cur.set(line); break;
      case 1: for (let i = 0; i < stride; i++) cur[i] = line[i] + (i >= 2 ? cur[i - 2] : 0); break;
      case 2: for (let i = 0; i < stride; i++) cur[i] = line[i] + prev[i]; break;
      case 3: for (let i = 0; i < stride; i++) cur[i] = line[i] + (((i >= 2 ? cur[i - 2] : 0) + prev[i]) >> 1); break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const a = i >= 2 ? cur[i - 2] : 0, b = prev[i], c = i >= 2 ? prev[i - 2] : 0;
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          cur[i] = line[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
        break;
      default: throw new Error(`unknown PNG filter ${filter}`);
    }
    for (let x = 0, i = y * width; x < width; x++, i++) ids[i] = (cur[2 * x] << 8) | cur[2 * x + 1];
    [prev, cur] = [cur, prev];
  }
  return { width, height, ids };
}
