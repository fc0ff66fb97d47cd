//! Initramfs compression: gzip, xz (CRC32 check, the only kind the kernel's
//! XZ decoder accepts besides none), zstd and LZ4 in the legacy frame (the
//! only LZ4 framing the kernel's `unlz4` reads), plus detection of a
//! compressed stream by its magic. This module must not know what it
//! compresses.

use std::io::Write;

/// A compression the Linux initramfs unpacker understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip (flate2), level 9.
    Gzip,
    /// xz (liblzma), preset 6 with CRC32: smallest, slowest to unpack.
    Xz,
    /// zstd, level 19: the default; unpacks ~2 s sooner than xz under TCG.
    #[default]
    Zstd,
    /// LZ4 (lz4_flex's block compressor) in the legacy frame `lz4 -l`
    /// writes: decompresses fastest under TCG, at about twice zstd's size.
    Lz4,
    /// Stored uncompressed.
    None,
}

/// Magic of the legacy LZ4 frame (`lz4 -l`), little-endian on disk.
const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;
/// Uncompressed bytes per block of the legacy frame: the kernel's
/// `unlz4` decompresses each block into a buffer of this size
/// (`LZ4_DEFAULT_UNCOMPRESSED_CHUNK_SIZE`, 8 MiB).
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// The legacy LZ4 frame: the magic, then per 8 MiB of input the compressed
/// block's length (u32, little-endian) and the block. lz4_flex writes only
/// the modern frame, whose framing the kernel does not read, so the few
/// lines of framing are written here around its block compressor.
fn lz4_legacy(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
    for chunk in data.chunks(LZ4_LEGACY_BLOCK) {
        let block = lz4_flex::block::compress(chunk);
        let len = u32::try_from(block.len()).map_err(std::io::Error::other)?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&block);
    }
    Ok(out)
}

/// Reads a legacy LZ4 frame (the inverse of [`lz4_legacy`]); a second
/// magic, as in concatenated frames, starts a new frame.
fn unlz4_legacy(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("lz4: {what}"));
    let mut out = Vec::new();
    let mut rest = data.get(4..).ok_or_else(|| bad("no magic"))?;
    while !rest.is_empty() {
        let (head, tail) = rest
            .split_at_checked(4)
            .ok_or_else(|| bad("truncated block length"))?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if len == LZ4_LEGACY_MAGIC {
            rest = tail;
            continue;
        }
        let (block, tail) = tail
            .split_at_checked(len as usize)
            .ok_or_else(|| bad("truncated block"))?;
        let plain = lz4_flex::block::decompress(block, LZ4_LEGACY_BLOCK)
            .map_err(|e| bad(&e.to_string()))?;
        out.extend_from_slice(&plain);
        rest = tail;
    }
    Ok(out)
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gzip" | "gz" => Ok(Compression::Gzip),
            "xz" => Ok(Compression::Xz),
            "zstd" | "zst" => Ok(Compression::Zstd),
            "lz4" => Ok(Compression::Lz4),
            "none" => Ok(Compression::None),
            other => Err(format!(
                "unknown compression {other:?}; expected one of gzip, xz, zstd, lz4, none"
            )),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::None => "none",
        })
    }
}

/// Compresses `data`.
pub fn compress(data: &[u8], how: Compression) -> std::io::Result<Vec<u8>> {
    match how {
        Compression::Gzip => {
            let mut e = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::best());
            e.write_all(data)?;
            e.finish()
        }
        Compression::Xz => {
            let stream =
                liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)
                    .map_err(std::io::Error::other)?;
            let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            e.write_all(data)?;
            e.finish()
        }
        Compression::Zstd => zstd::stream::encode_all(data, 19),
        Compression::Lz4 => lz4_legacy(data),
        Compression::None => Ok(data.to_vec()),
    }
}

/// Recognises the compression of a stream by its first bytes (None if it
/// looks like an uncompressed newc archive, `Err` if unknown).
pub fn detect(data: &[u8]) -> Result<Compression, String> {
    if data.starts_with(&[0x1f, 0x8b]) {
        Ok(Compression::Gzip)
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Ok(Compression::Xz)
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Compression::Zstd)
    } else if data.starts_with(&LZ4_LEGACY_MAGIC.to_le_bytes()) {
        Ok(Compression::Lz4)
    } else if data.starts_with(b"07070") {
        Ok(Compression::None)
    } else {
        Err(format!(
            "unknown initramfs format (first bytes {:02x?})",
            &data[..data.len().min(6)]
        ))
    }
}

/// Decompresses a stream whose compression was detected.
pub fn decompress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let how = detect(data).map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    match how {
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
        }
        Compression::Xz => {
            liblzma::read::XzDecoder::new_multi_decoder(data).read_to_end(&mut out)?;
        }
        Compression::Zstd => {
            out = zstd::stream::decode_all(data)?;
        }
        Compression::Lz4 => out = unlz4_legacy(data)?,
        Compression::None => out = data.to_vec(),
    }
    Ok(out)
}

/// True when `data` decompresses to exactly `len` bytes (a cheap integrity
/// check for cached compressed archives).
pub fn decompressed_len_matches(data: &[u8], len: usize) -> bool {
    decompress(data).is_ok_and(|d| d.len() == len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips_and_is_detected() {
        let data = b"070701 hello hello hello hello".repeat(100);
        for how in [
            Compression::Gzip,
            Compression::Xz,
            Compression::Zstd,
            Compression::Lz4,
            Compression::None,
        ] {
            let c = compress(&data, how).expect("compress");
            assert_eq!(detect(&c), Ok(how), "{how}");
            assert_eq!(decompress(&c).expect("decompress"), data, "{how}");
        }
    }

    #[test]
    fn xz_uses_crc32_check() {
        let c = compress(b"x", Compression::Xz).expect("xz");
        // Stream flags (bytes 6..8): check type in the low nibble of byte 7; CRC32 = 1.
        assert_eq!(c[7] & 0x0f, 1);
    }

    #[test]
    fn unknown_compression_name_is_rejected() {
        let e = "lzo"
            .parse::<Compression>()
            .expect_err("lzo must be rejected");
        assert!(e.contains("lzo") && e.contains("gzip, xz, zstd, lz4, none"));
    }

    #[test]
    fn lz4_writes_the_legacy_frame_in_8_mib_blocks() {
        // 8 MiB + 1 byte of input: two blocks after the magic.
        let data: Vec<u8> = (0..(8 << 20) + 1).map(|i: u32| (i % 251) as u8).collect();
        let c = compress(&data, Compression::Lz4).expect("lz4");
        assert_eq!(c[..4], [0x02, 0x21, 0x4c, 0x18]);
        let first = u32::from_le_bytes([c[4], c[5], c[6], c[7]]) as usize;
        let second_at = 8 + first;
        let second = u32::from_le_bytes([
            c[second_at],
            c[second_at + 1],
            c[second_at + 2],
            c[second_at + 3],
        ]) as usize;
        assert_eq!(second_at + 4 + second, c.len(), "exactly two blocks");
        assert_eq!(
            lz4_flex::block::decompress(&c[8..second_at], 8 << 20)
                .expect("first block")
                .len(),
            8 << 20
        );
        assert_eq!(decompress(&c).expect("round trip"), data);
    }

    #[test]
    fn lz4_reads_frames_written_by_the_lz4_tool() {
        // `printf 'hello hello hello hello\n' | lz4 -l -c | xxd -i`
        let tool = [
            0x02, 0x21, 0x4c, 0x18, 0x0f, 0x00, 0x00, 0x00, 0x69, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
            0x20, 0x06, 0x00, 0x50, 0x65, 0x6c, 0x6c, 0x6f, 0x0a,
        ];
        assert_eq!(
            decompress(&tool).expect("lz4 -l output"),
            b"hello hello hello hello\n"
        );
        assert!(decompress(&tool[..10]).is_err(), "a cut frame is an error");
    }
}
