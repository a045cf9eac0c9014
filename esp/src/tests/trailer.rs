//! Authentic packets (valid ICV) whose decrypted trailer is wrong: built with
//! the SA's own transform so that only the trailer checks can refuse them.

use crate::transform::Transform;
use crate::*;

const SPI: u32 = 0x0000_a000;

fn craft(suite: Suite, keys: &SaKeys, seq: u32, body: &[u8]) -> Vec<u8> {
    assert_eq!(body.len() % suite.block_size(), 0);
    let mut pkt = Vec::new();
    pkt.extend_from_slice(&SPI.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend((0..suite.iv_len()).map(|i| i as u8 ^ seq as u8));
    pkt.extend_from_slice(body);
    pkt.extend(std::iter::repeat(0).take(suite.icv_len()));
    Transform::new(suite, keys)
        .unwrap()
        .seal(&mut pkt, None)
        .unwrap();
    pkt
}

/// Payload, then padding to the block size with the given trailer bytes.
fn body(suite: Suite, payload: &[u8], pad: &[u8], next_header: u8) -> Vec<u8> {
    let mut b = payload.to_vec();
    b.extend_from_slice(pad);
    b.push(pad.len() as u8);
    b.push(next_header);
    // Align by growing the payload after its first (version) byte.
    while b.len() % suite.block_size() != 0 {
        b.insert(1, 0);
    }
    b
}

#[test]
fn trailer_errors_are_typed_and_counted() {
    for suite in Suite::ALL {
        let keys = SaKeys::from_keymat(suite, &vec![9; suite.keymat_len()]).unwrap();
        let inb = InboundSa::new(SPI, suite, &keys, InboundConfig::default()).unwrap();
        let v4 = [0x45, 0, 0, 20];
        let v6 = [0x60, 0, 0, 0];
        let cases: Vec<(Vec<u8>, Result<InnerProto, DropReason>)> = vec![
            (body(suite, &v4, &[1, 2, 3], 4), Ok(InnerProto::Ipv4)),
            (body(suite, &v6, &[], 41), Ok(InnerProto::Ipv6)),
            (body(suite, &v4, &[1, 2], 59), Err(DropReason::TfcDummy)),
            (
                body(suite, &v4, &[1, 2], 17),
                Err(DropReason::BadNextHeader(17)),
            ),
            (body(suite, &v4, &[1, 3], 4), Err(DropReason::BadPadding)),
            (body(suite, &v4, &[0, 0, 0], 4), Err(DropReason::BadPadding)),
            (
                body(suite, &v6, &[1, 2], 4),
                Err(DropReason::BadInnerPacket),
            ),
            (body(suite, &v4, &[], 41), Err(DropReason::BadInnerPacket)),
        ];
        for (i, (b, want)) in cases.iter().enumerate() {
            let mut pkt = craft(suite, &keys, i as u32 + 1, b);
            let got = inb.decap(&mut pkt).map(|d| d.proto);
            assert_eq!(&got, want, "{suite:?} case {i}");
        }
        // Pad length larger than the whole plaintext.
        let mut big = vec![0x45; suite.block_size() - 2];
        big.extend_from_slice(&[200, 4]);
        let mut pkt = craft(suite, &keys, 100, &big);
        assert_eq!(inb.decap(&mut pkt), Err(DropReason::BadPadding));
        // Authentic packets move the window even when their content is refused.
        let mut again = craft(suite, &keys, 3, &cases[2].0);
        assert_eq!(inb.decap(&mut again), Err(DropReason::Replayed));

        let d = inb.stats().drops;
        assert_eq!(d.tfc_dummy, 1);
        assert_eq!(d.bad_next_header, 1);
        assert_eq!(d.bad_padding, 3);
        assert_eq!(d.bad_inner_packet, 2);
        assert_eq!(d.replayed, 1);
        assert_eq!(inb.stats().packets, 2);
    }
}

#[test]
fn misaligned_or_short_ciphertext() {
    for suite in Suite::ALL {
        let keys = SaKeys::from_keymat(suite, &vec![9; suite.keymat_len()]).unwrap();
        let inb = InboundSa::new(SPI, suite, &keys, InboundConfig::default()).unwrap();
        let good = craft(suite, &keys, 1, &body(suite, &[0x45], &[], 4));
        // One byte more or less in the ciphertext breaks alignment.
        let mut longer = good.clone();
        longer.insert(suite.headroom(), 0);
        assert_eq!(inb.decap(&mut longer), Err(DropReason::BadLength));
        let mut cut = good.clone();
        cut.truncate(good.len() - 1);
        assert_eq!(inb.decap(&mut cut), Err(DropReason::Truncated));
        for n in 0..suite.min_packet_len() {
            assert_eq!(
                inb.decap(&mut good[..n].to_vec()),
                Err(DropReason::Truncated)
            );
        }
    }
}
