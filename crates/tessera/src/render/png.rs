//! A minimal deterministic PNG encoder for an opaque pixmap.

use tiny_skia::Pixmap;

/// PNG (8-bit RGB, Sub filter, zlib level 6 by miniz_oxide) of an opaque pixmap. Encoded here
/// rather than by tiny-skia's `png` dependency because that one picks its deflate backend from
/// whatever cargo features the rest of the build enables, so the same pixels came out as different
/// bytes from the CLI and from the Python extension; miniz_oxide is pure Rust, pinned by
/// Cargo.lock, and its output depends only on the input and the level.
pub(super) fn encode_png(pm: &Pixmap) -> Vec<u8> {
    let (w, h) = (pm.width() as usize, pm.height() as usize);
    let mut raw = Vec::with_capacity(h * (1 + 3 * w));
    for row in pm.data().chunks_exact(4 * w) {
        raw.push(1); // Sub: each byte minus the same channel of the pixel to its left
        let mut prev = [0u8; 3];
        for px in row.chunks_exact(4) {
            // Every pixel is opaque (white canvas, opaque fills): premultiplied = straight.
            for c in 0..3 {
                raw.push(px[c].wrapping_sub(prev[c]));
                prev[c] = px[c];
            }
        }
    }
    let idat = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    };
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, adaptive filters, no interlace
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    out
}
