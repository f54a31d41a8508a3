use super::*;

#[test]
fn golden_bytes() {
    // Pins the on-disk format: if this changes, bump VERSION.
    let mut bytes = encode_header(WalSeq(7)).to_vec();
    encode_frame(WalSeq(7), b"hi", &mut bytes);
    let want: Vec<u8> = [
        &b"STRATAWL"[..],
        &[1, 0, 0, 0],
        &7u64.to_le_bytes(),
        &crc32fast::hash(&bytes[0..20]).to_le_bytes(),
        &2u32.to_le_bytes(),
        &{
            let mut h = crc32fast::Hasher::new();
            h.update(&7u64.to_le_bytes());
            h.update(b"hi");
            h.finalize()
        }
        .to_le_bytes(),
        &7u64.to_le_bytes(),
        b"hi",
    ]
    .concat();
    assert_eq!(bytes, want);
    // And the literal bytes, so the CRC polynomial cannot drift either. The CRCs
    // were cross-checked with Python's zlib.crc32 (IEEE 802.3 polynomial).
    assert_eq!(
        bytes,
        vec![
            0x53, 0x54, 0x52, 0x41, 0x54, 0x41, 0x57, 0x4c, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf5, 0xc6, 0x83, 0x12, 0x02, 0x00, 0x00, 0x00,
            0x5c, 0x4b, 0x1c, 0x98, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x69,
        ]
    );
    let scan = scan(&bytes);
    assert_eq!(scan.base, Some(WalSeq(7)));
    assert_eq!(scan.records, vec![(WalSeq(7), 40..42)]);
    assert_eq!(scan.corruption, None);
}

#[test]
fn file_names_round_trip() {
    let p = path_for(Path::new("/w"), WalSeq(42));
    assert_eq!(p, Path::new("/w/00000000000000000042.wal"));
    assert_eq!(parse_file_name(&p), Some(WalSeq(42)));
    assert_eq!(parse_file_name(Path::new("/w/42.wal")), None);
    assert_eq!(
        parse_file_name(Path::new("/w/0000000000000000004x.wal")),
        None
    );
}

#[test]
fn reports_each_kind_of_corruption() {
    let mut bytes = encode_header(WalSeq(1)).to_vec();
    encode_frame(WalSeq(1), b"abc", &mut bytes);
    let good = bytes.len();
    encode_frame(WalSeq(2), b"defg", &mut bytes);

    let torn = scan(&bytes[..bytes.len() - 1]);
    assert_eq!(torn.valid_len, good);
    assert_eq!(torn.corruption, Some(Corruption::Torn { offset: good }));

    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(
        scan(&flipped).corruption,
        Some(Corruption::Checksum { offset: good })
    );

    let mut gap = bytes[..good].to_vec();
    encode_frame(WalSeq(5), b"x", &mut gap);
    assert_eq!(
        scan(&gap).corruption,
        Some(Corruption::Sequence {
            offset: good,
            expected: 2,
            found: 5
        })
    );

    assert!(matches!(
        scan(b"STRATAW").corruption,
        Some(Corruption::BadHeader { .. })
    ));
}
