//! GPMF KLV framing (GoPro Metadata Format, <https://github.com/gopro/gpmf-parser>, "GPMF
//! Introduction"): every item is an 8-byte header — FourCC key, type character, structure size
//! (bytes), repeat count (big-endian `u16`) — then `size × repeat` bytes of big-endian data
//! padded to a multiple of 4. Type `0` nests further items (`DEVC` → `STRM` → ...).
//!
//! Pure functions over bytes; every error names the byte offset of the item.

/// One KLV item borrowed from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Klv<'a> {
    /// FourCC key (`GPS5`, `ACCL`, `STRM`...).
    pub key: [u8; 4],
    /// Type character (`l` i32, `s` i16, `f` f32, `?` complex, `0` nested...).
    pub typ: u8,
    /// Bytes per sample (structure size).
    pub size: u8,
    /// Number of samples.
    pub repeat: u16,
    /// The data, without padding.
    pub data: &'a [u8],
    /// Byte offset of the item's header from the start of the payload.
    pub offset: usize,
}

impl Klv<'_> {
    /// The key as text (`GPS5`); non-printable bytes as `?`.
    ///
    /// ```
    /// use tessera::ingest::telemetry::klv::items;
    /// let k = items(b"GPSFL\x04\x00\x01\x00\x00\x00\x03", 0).next().unwrap().unwrap();
    /// assert_eq!(k.key_str(), "GPSF");
    /// ```
    pub fn key_str(&self) -> String {
        super::fourcc(&self.key)
    }

    /// Whether the item nests further items (type 0).
    ///
    /// ```
    /// use tessera::ingest::telemetry::klv::items;
    /// let k = items(b"DEVC\x00\x01\x00\x00", 0).next().unwrap().unwrap();
    /// assert!(k.nested() && k.data.is_empty());
    /// ```
    pub fn nested(&self) -> bool {
        self.typ == 0
    }

    /// The nested items of a type-0 item (empty for any other type).
    ///
    /// ```
    /// use tessera::ingest::telemetry::klv::items;
    /// let devc = b"DEVC\x00\x01\x00\x0cGPSFL\x04\x00\x01\x00\x00\x00\x03";
    /// let d = items(devc, 0).next().unwrap().unwrap();
    /// assert_eq!(d.children().next().unwrap().unwrap().key_str(), "GPSF");
    /// ```
    pub fn children(&self) -> Items<'_> {
        let data = if self.nested() { self.data } else { &[] };
        Items {
            buf: data,
            pos: 0,
            base: self.offset + 8,
            done: false,
        }
    }
}

/// A framing error: what is wrong and at which byte offset of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Byte offset of the item that is wrong.
    pub offset: usize,
    /// What is wrong.
    pub what: String,
}

/// Iterator over the KLV items of one level; ends after the first framing error.
#[derive(Debug, Clone)]
pub struct Items<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    done: bool,
}

/// The items of `buf`, whose first byte is at offset `base` of the payload.
///
/// ```
/// use tessera::ingest::telemetry::klv::items;
/// let bad: Vec<_> = items(b"GPSFL\x04\x00\x09\x00\x00", 100).collect();
/// assert_eq!(bad[0].as_ref().unwrap_err().offset, 100); // 36 bytes announced, 2 present
/// ```
pub fn items(buf: &[u8], base: usize) -> Items<'_> {
    Items {
        buf,
        pos: 0,
        base,
        done: false,
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<Klv<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let at = self.base + self.pos;
        let rest = &self.buf[self.pos..];
        let fail = |what: String| Some(Err(Malformed { offset: at, what }));
        if rest.len() < 8 {
            self.done = true;
            // Trailing zero padding is allowed; anything else is a cut-off header.
            return if rest.iter().all(|&b| b == 0) {
                None
            } else {
                fail(format!("{} bytes left, a GPMF item header needs 8", rest.len()))
            };
        }
        let key = [rest[0], rest[1], rest[2], rest[3]];
        if key == [0; 4] {
            // Padding to the end of the payload.
            self.done = true;
            return None;
        }
        if !key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b' ') {
            self.done = true;
            return fail(format!("key {:02x?} is not a FourCC", key));
        }
        let (typ, size, repeat) = (rest[4], rest[5], u16::from_be_bytes([rest[6], rest[7]]));
        let len = usize::from(size) * usize::from(repeat);
        let padded = len.div_ceil(4) * 4;
        if rest.len() < 8 + len {
            self.done = true;
            return fail(format!(
                "{} announces {len} bytes ({size} × {repeat}), {} present",
                String::from_utf8_lossy(&key),
                rest.len() - 8
            ));
        }
        self.pos += (8 + padded).min(rest.len());
        Some(Ok(Klv {
            key,
            typ,
            size,
            repeat,
            data: &rest[8..8 + len],
            offset: at,
        }))
    }
}

/// Byte width of a GPMF element type, `None` for nested, complex or unknown types.
///
/// ```
/// use tessera::ingest::telemetry::klv::width;
/// assert_eq!((width(b'l'), width(b's'), width(b'd'), width(b'?')), (Some(4), Some(2), Some(8), None));
/// ```
pub fn width(typ: u8) -> Option<usize> {
    match typ {
        b'b' | b'B' | b'c' => Some(1),
        b's' | b'S' => Some(2),
        b'l' | b'L' | b'f' | b'q' | b'F' => Some(4),
        b'j' | b'J' | b'd' | b'Q' => Some(8),
        _ => None,
    }
}

/// Read one element of type `typ` from the start of `b` as f64 (`q` is Q15.16 and `Q` Q31.32
/// fixed point); `None` for a type that is not a number or too few bytes.
///
/// ```
/// use tessera::ingest::telemetry::klv::number;
/// assert_eq!(number(b's', &[0xff, 0xfe]), Some(-2.0));
/// assert_eq!(number(b'q', &[0, 1, 0x80, 0]), Some(1.5));
/// ```
pub fn number(typ: u8, b: &[u8]) -> Option<f64> {
    let w = width(typ)?;
    let b = b.get(..w)?;
    let a4 = |b: &[u8]| [b[0], b[1], b[2], b[3]];
    let a8 = |b: &[u8]| [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
    Some(match typ {
        b'b' => f64::from(b[0] as i8),
        b'B' => f64::from(b[0]),
        b's' => f64::from(i16::from_be_bytes([b[0], b[1]])),
        b'S' => f64::from(u16::from_be_bytes([b[0], b[1]])),
        b'l' => f64::from(i32::from_be_bytes(a4(b))),
        b'L' => f64::from(u32::from_be_bytes(a4(b))),
        b'f' => f64::from(f32::from_be_bytes(a4(b))),
        b'q' => f64::from(i32::from_be_bytes(a4(b))) / 65536.0,
        b'j' => i64::from_be_bytes(a8(b)) as f64,
        b'J' => u64::from_be_bytes(a8(b)) as f64,
        b'd' => f64::from_be_bytes(a8(b)),
        b'Q' => i64::from_be_bytes(a8(b)) as f64 / 4_294_967_296.0,
        _ => return None,
    })
}

/// The element types of one sample: `typ` repeated to fill `size` bytes, or the `TYPE`
/// string of a complex (`?`) item. `None` when they do not fill the structure exactly.
///
/// ```
/// use tessera::ingest::telemetry::klv::layout;
/// assert_eq!(layout(b'l', 20, None), Some(b"lllll".to_vec()));
/// assert_eq!(layout(b'?', 32, Some(b"lllllllSS")), Some(b"lllllllSS".to_vec()));
/// assert_eq!(layout(b'l', 6, None), None);
/// ```
pub fn layout(typ: u8, size: u8, complex: Option<&[u8]>) -> Option<Vec<u8>> {
    let types: Vec<u8> = if typ == b'?' {
        expand_type(complex?)?
    } else {
        let w = width(typ)?;
        if usize::from(size) % w != 0 {
            return None;
        }
        vec![typ; usize::from(size) / w]
    };
    let total: usize = types.iter().map(|t| width(*t)).sum::<Option<usize>>()?;
    (total == usize::from(size) && !types.is_empty()).then_some(types)
}

/// A `TYPE` string with its `[n]` repeats expanded (`"f[3]L"` → `"fffL"`).
fn expand_type(t: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        match t[i] {
            0 => break,
            b'[' => {
                let end = i + t[i..].iter().position(|&c| c == b']')?;
                let n: usize = std::str::from_utf8(&t[i + 1..end]).ok()?.parse().ok()?;
                let last = *out.last()?;
                out.extend(std::iter::repeat_n(last, n.checked_sub(1)?.min(1024)));
                i = end + 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_items_are_padded_to_four_bytes() {
        // DVNM "Camera" (6 bytes, padded to 8), then TSMP.
        let b = b"DVNMc\x01\x00\x06Camera\x00\x00TSMPL\x04\x00\x01\x00\x00\x00\xc7";
        let v: Vec<Klv> = items(b, 0).map(Result::unwrap).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].data, b"Camera");
        assert_eq!((v[1].key_str(), v[1].offset), ("TSMP".to_string(), 16));
    }

    #[test]
    fn rule_a_cut_item_is_an_error_at_its_offset_never_a_panic() {
        let b = b"TSMPL\x04\x00\x01\x00\x00\x00\xc7GPS5l\x14\x00\x02\x00\x00";
        let v: Vec<_> = items(b, 40).collect();
        assert!(v[0].is_ok());
        let e = v[1].as_ref().unwrap_err();
        assert_eq!(e.offset, 52);
        assert!(e.what.contains("40 bytes"), "{}", e.what);
        for cut in 0..b.len() {
            let _ = items(&b[..cut], 0).count();
        }
    }

    #[test]
    fn rule_trailing_zero_padding_ends_a_level() {
        assert_eq!(
            items(b"TSMPL\x04\x00\x01\x00\x00\x00\xc7\x00\x00\x00\x00", 0).count(),
            1
        );
        assert_eq!(items(&[0u8; 5], 0).count(), 0);
        assert!(items(b"\x01\x02\x03", 0).next().unwrap().is_err());
    }

    #[test]
    fn rule_type_strings_expand_repeats() {
        assert_eq!(layout(b'?', 16, Some(b"f[3]L")), Some(b"fffL".to_vec()));
        assert_eq!(layout(b'?', 16, Some(b"f[3]")), None);
        assert_eq!(layout(b'?', 4, Some(b"[3]")), None);
        assert_eq!(number(b'Q', &[0, 0, 0, 1, 0x80, 0, 0, 0]), Some(1.5));
    }
}
