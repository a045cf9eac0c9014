//! Published known-answer tests for the primitives, and DH group properties.
use super::*;
use rand::SeedableRng;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

#[test]
fn hmac_rfc4231_and_rfc2202() {
    // RFC 4231 test case 2 and RFC 2202 test case 2: key "Jefe".
    let data = b"what do ya want for nothing?";
    let cases = [
        (PrfAlg::HmacSha1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        (PrfAlg::HmacSha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (
            PrfAlg::HmacSha384,
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
        ),
        (
            PrfAlg::HmacSha512,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
    ];
    for (alg, expect) in cases {
        assert_eq!(alg.prf(b"Jefe", data).expose(), h(expect), "{alg:?}");
    }
    // RFC 4231 test case 1 with the SHA-256 truncation used as an ICV (RFC 4868).
    let icv = IntegAlg::HmacSha256_128.compute(&[0x0b; 20], b"Hi There");
    assert_eq!(icv, h("b0344c61d8db38535ca8afceaf0bf12b"));
}

#[test]
fn prf_plus_is_the_rfc7296_iteration() {
    // T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02), ...
    let k = b"key";
    let s = b"seed";
    let t1 = PrfAlg::HmacSha256.prf_parts(k, &[s, &[1]]);
    let t2 = PrfAlg::HmacSha256.prf_parts(k, &[t1.expose(), s, &[2]]);
    let out = PrfAlg::HmacSha256.prf_plus(k, s, 40);
    assert_eq!(&out.expose()[..32], t1.expose());
    assert_eq!(&out.expose()[32..], &t2.expose()[..8]);
}

#[test]
fn x25519_rfc7748_section_6_1() {
    let a = DhPrivate::from_private_bytes(
        DhGroup::Curve25519,
        &h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    )
    .unwrap();
    let b = DhPrivate::from_private_bytes(
        DhGroup::Curve25519,
        &h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
    )
    .unwrap();
    assert_eq!(
        a.public(),
        h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
    assert_eq!(
        b.public(),
        h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    );
    let shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(a.shared_secret(&b.public()).unwrap().expose(), shared);
    assert_eq!(b.shared_secret(&a.public()).unwrap().expose(), shared);
    // A low-order point gives an all-zero secret, which RFC 8031 says to reject.
    assert!(a.shared_secret(&[0u8; 32]).is_err());
}

#[test]
fn ecp256_rfc5903_section_8_1() {
    let i = DhPrivate::from_private_bytes(
        DhGroup::Ecp256,
        &h("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433"),
    )
    .unwrap();
    let gi = h(
        "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180\
                5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
    );
    assert_eq!(i.public(), gi);
    let r = DhPrivate::from_private_bytes(
        DhGroup::Ecp256,
        &h("C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53"),
    )
    .unwrap();
    let gr = h(
        "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63\
                56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
    );
    assert_eq!(r.public(), gr);
    let gir = h("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE");
    assert_eq!(i.shared_secret(&gr).unwrap().expose(), gir);
    assert_eq!(r.shared_secret(&gi).unwrap().expose(), gir);
    // A point off the curve is refused.
    let mut bad = gr.clone();
    bad[63] ^= 1;
    assert!(i.shared_secret(&bad).is_err());
}

#[test]
fn every_group_agrees_and_rejects_bad_public_values() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for g in [
        DhGroup::Modp1024,
        DhGroup::Modp1536,
        DhGroup::Modp2048,
        DhGroup::Modp3072,
        DhGroup::Modp4096,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Ecp521,
        DhGroup::Curve25519,
    ] {
        let a = g.generate(&mut rng);
        let b = g.generate(&mut rng);
        assert_eq!(a.public().len(), g.public_len(), "{g:?}");
        let s1 = a.shared_secret(&b.public()).unwrap();
        let s2 = b.shared_secret(&a.public()).unwrap();
        assert_eq!(s1, s2, "{g:?}");
        assert!(
            a.shared_secret(&b.public()[1..]).is_err(),
            "{g:?} short value"
        );
        assert_eq!(DhGroup::from_id(g.id()), Some(g));
    }
}

#[test]
fn modp_groups_are_safe_primes_with_generator_2_and_check_range() {
    for g in [
        DhGroup::Modp1024,
        DhGroup::Modp1536,
        DhGroup::Modp2048,
        DhGroup::Modp3072,
        DhGroup::Modp4096,
    ] {
        let n = g.public_len();
        let p = h(match g {
            DhGroup::Modp1024 => super::modp_primes::MODP_1024,
            DhGroup::Modp1536 => super::modp_primes::MODP_1536,
            DhGroup::Modp2048 => super::modp_primes::MODP_2048,
            DhGroup::Modp3072 => super::modp_primes::MODP_3072,
            _ => super::modp_primes::MODP_4096,
        });
        // q = (p - 1) / 2; for these primes (p = 7 mod 8) 2 is a quadratic residue: 2^q = 1.
        let mut q = p.clone();
        let mut carry = 0u8;
        for byte in q.iter_mut() {
            let next = *byte & 1;
            *byte = (*byte >> 1) | (carry << 7);
            carry = next;
        }
        let one = {
            let mut v = vec![0u8; n];
            v[n - 1] = 1;
            v
        };
        assert_eq!(super::dh::modp(g, &[2], &q), one, "{g:?}");
        let x = DhPrivate::from_private_bytes(g, &[3u8; 32]).unwrap();
        let mut p_minus_1 = p.clone();
        p_minus_1[n - 1] -= 1;
        for bad in [
            vec![0u8; n],
            one.clone(),
            p_minus_1,
            p.clone(),
            vec![0xff; n],
        ] {
            assert!(x.shared_secret(&bad).is_err(), "{g:?}");
        }
    }
}
