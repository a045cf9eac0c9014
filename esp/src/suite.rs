//! Cipher suites: which transforms exist and the sizes that follow from them.

/// AES key size of a suite (the GCM salt is not counted here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AesKeySize {
    Aes128,
    Aes256,
}

impl AesKeySize {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            AesKeySize::Aes128 => 16,
            AesKeySize::Aes256 => 32,
        }
    }

    /// Key length in bits, as carried in the IKEv2 Key Length attribute.
    pub const fn key_bits(self) -> u16 {
        match self {
            AesKeySize::Aes128 => 128,
            AesKeySize::Aes256 => 256,
        }
    }

    fn from_bits(bits: u16) -> Option<Self> {
        match bits {
            128 => Some(AesKeySize::Aes128),
            256 => Some(AesKeySize::Aes256),
            _ => None,
        }
    }
}

/// Integrity algorithm of a non-AEAD suite (RFC 2404, RFC 4868).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Integrity {
    HmacSha1_96,
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl Integrity {
    /// Key length in bytes (the full hash output length, RFC 2404 / RFC 4868).
    pub const fn key_len(self) -> usize {
        match self {
            Integrity::HmacSha1_96 => 20,
            Integrity::HmacSha256_128 => 32,
            Integrity::HmacSha384_192 => 48,
            Integrity::HmacSha512_256 => 64,
        }
    }

    /// Truncated ICV length in bytes.
    pub const fn icv_len(self) -> usize {
        match self {
            Integrity::HmacSha1_96 => 12,
            Integrity::HmacSha256_128 => 16,
            Integrity::HmacSha384_192 => 24,
            Integrity::HmacSha512_256 => 32,
        }
    }

    /// IKEv2 transform ID (transform type 3, RFC 7296 / IANA).
    pub const fn ikev2_id(self) -> u16 {
        match self {
            Integrity::HmacSha1_96 => 2,
            Integrity::HmacSha256_128 => 12,
            Integrity::HmacSha384_192 => 13,
            Integrity::HmacSha512_256 => 14,
        }
    }

    pub(crate) fn hmac_algorithm(self) -> ring::hmac::Algorithm {
        match self {
            Integrity::HmacSha1_96 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Integrity::HmacSha256_128 => ring::hmac::HMAC_SHA256,
            Integrity::HmacSha384_192 => ring::hmac::HMAC_SHA384,
            Integrity::HmacSha512_256 => ring::hmac::HMAC_SHA512,
        }
    }
}

/// An ESP cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-GCM with a 16-byte ICV (RFC 4106), ENCR_AES_GCM_16.
    AesGcm16(AesKeySize),
    /// AES-CBC (RFC 3602) with an HMAC integrity algorithm.
    AesCbc(AesKeySize, Integrity),
}

/// Length of the SPI and sequence number fields at the start of every ESP packet.
pub const ESP_HEADER_LEN: usize = 8;
/// Largest `headroom` of any suite (ESP header + 16-byte CBC IV).
pub const MAX_HEADROOM: usize = ESP_HEADER_LEN + 16;
/// Largest `tailroom` of any suite (15 padding bytes, pad length, next header, 32-byte ICV).
pub const MAX_TAILROOM: usize = 15 + 2 + 32;

/// IKEv2 transform ID of ENCR_AES_CBC.
pub const IKEV2_ENCR_AES_CBC: u16 = 12;
/// IKEv2 transform ID of ENCR_AES_GCM_16.
pub const IKEV2_ENCR_AES_GCM_16: u16 = 20;

/// Length of the salt that RFC 4106 takes from the end of the GCM keying material.
pub(crate) const GCM_SALT_LEN: usize = 4;

impl Suite {
    /// All suites this crate implements.
    pub const ALL: [Suite; 10] = [
        Suite::AesGcm16(AesKeySize::Aes128),
        Suite::AesGcm16(AesKeySize::Aes256),
        Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha1_96),
        Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha256_128),
        Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha384_192),
        Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha512_256),
        Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha1_96),
        Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha256_128),
        Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha384_192),
        Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha512_256),
    ];

    /// Maps negotiated IKEv2 transforms (encryption ID, its key length in bits,
    /// integrity ID or `None`) onto a suite. `None` if unsupported or inconsistent
    /// (GCM with an integrity transform, CBC without one).
    pub fn from_ikev2(encr_id: u16, key_bits: u16, integ_id: Option<u16>) -> Option<Suite> {
        let aes = AesKeySize::from_bits(key_bits)?;
        match (encr_id, integ_id) {
            (IKEV2_ENCR_AES_GCM_16, None) => Some(Suite::AesGcm16(aes)),
            (IKEV2_ENCR_AES_CBC, Some(id)) => {
                let integ = [
                    Integrity::HmacSha1_96,
                    Integrity::HmacSha256_128,
                    Integrity::HmacSha384_192,
                    Integrity::HmacSha512_256,
                ]
                .into_iter()
                .find(|i| i.ikev2_id() == id)?;
                Some(Suite::AesCbc(aes, integ))
            }
            _ => None,
        }
    }

    /// strongSwan-style proposal name: `aes128gcm16`, `aes256-sha256`, ...
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesGcm16(AesKeySize::Aes128) => "aes128gcm16",
            Suite::AesGcm16(AesKeySize::Aes256) => "aes256gcm16",
            Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha1_96) => "aes128-sha1",
            Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha256_128) => "aes128-sha256",
            Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha384_192) => "aes128-sha384",
            Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha512_256) => "aes128-sha512",
            Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha1_96) => "aes256-sha1",
            Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha256_128) => "aes256-sha256",
            Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha384_192) => "aes256-sha384",
            Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha512_256) => "aes256-sha512",
        }
    }

    /// The suite with this [`Suite::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Length of the encryption key in the IKEv2 KEYMAT, including the 4-byte
    /// salt for GCM (RFC 4106 section 8.1).
    pub const fn encr_key_len(self) -> usize {
        match self {
            Suite::AesGcm16(aes) => aes.key_len() + GCM_SALT_LEN,
            Suite::AesCbc(aes, _) => aes.key_len(),
        }
    }

    /// Length of the integrity key in the IKEv2 KEYMAT (0 for AEAD suites).
    pub const fn integ_key_len(self) -> usize {
        match self {
            Suite::AesGcm16(_) => 0,
            Suite::AesCbc(_, integ) => integ.key_len(),
        }
    }

    /// Keying material taken per direction: encryption key then integrity key.
    pub const fn keymat_len(self) -> usize {
        self.encr_key_len() + self.integ_key_len()
    }

    /// Alignment the encrypted part (payload, padding, pad length, next header)
    /// is padded to: the cipher block size for CBC, 4 bytes for GCM (RFC 4303 2.4).
    pub const fn block_size(self) -> usize {
        match self {
            Suite::AesGcm16(_) => 4,
            Suite::AesCbc(..) => 16,
        }
    }

    /// Length of the IV carried in each packet.
    pub const fn iv_len(self) -> usize {
        match self {
            Suite::AesGcm16(_) => 8,
            Suite::AesCbc(..) => 16,
        }
    }

    /// Length of the ICV at the end of each packet.
    pub const fn icv_len(self) -> usize {
        match self {
            Suite::AesGcm16(_) => 16,
            Suite::AesCbc(_, integ) => integ.icv_len(),
        }
    }

    /// Bytes the caller reserves before the inner packet: ESP header and IV.
    pub const fn headroom(self) -> usize {
        ESP_HEADER_LEN + self.iv_len()
    }

    /// Bytes the caller reserves after the inner packet: worst-case padding,
    /// pad length, next header and ICV.
    pub const fn tailroom(self) -> usize {
        self.block_size() - 1 + 2 + self.icv_len()
    }

    /// `tailroom` when padding to whole AES blocks.
    pub const fn aes_block_tailroom(self) -> usize {
        AES_BLOCK_LEN - 1 + 2 + self.icv_len()
    }

    /// Bytes ESP adds to an inner packet of `inner_len` bytes.
    pub const fn overhead(self, inner_len: usize) -> usize {
        self.headroom() + self.pad_len(inner_len) + 2 + self.icv_len()
    }

    /// The largest inner packet whose ESP packet (minimal padding) is at most `esp_len`
    /// bytes: what a tunnel carries unfragmented when `esp_len` is the underlay's room.
    pub const fn max_inner_len(self, esp_len: usize) -> Option<usize> {
        let fixed = self.headroom() + 2 + self.icv_len();
        if esp_len < fixed {
            return None;
        }
        // Whole blocks of payload, pad length and next header fit; the rest is lost.
        let body = esp_len - self.headroom() - self.icv_len();
        let aligned = body - body % self.block_size();
        if aligned < 2 {
            return None;
        }
        Some(aligned - 2)
    }

    /// Smallest valid ESP packet of this suite: header, IV, one aligned block
    /// holding at least pad length and next header, ICV.
    pub(crate) const fn min_packet_len(self) -> usize {
        self.headroom() + self.block_size() + self.icv_len()
    }

    /// Padding bytes needed so that payload, pad length and next header fill
    /// whole blocks.
    pub(crate) const fn pad_len(self, inner_len: usize) -> usize {
        pad_to(inner_len, self.block_size())
    }

    /// Padding bytes that make payload, pad length and next header fill whole AES
    /// blocks (16 bytes): `pad_len` for CBC, more for GCM.
    pub(crate) const fn aes_block_pad_len(self, inner_len: usize) -> usize {
        pad_to(inner_len, AES_BLOCK_LEN)
    }
}

const AES_BLOCK_LEN: usize = 16;

/// Padding after `inner_len` bytes and the two trailer bytes up to a multiple of `align`.
const fn pad_to(inner_len: usize, align: usize) -> usize {
    (align - (inner_len + 2) % align) % align
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_rfcs() {
        let gcm128 = Suite::AesGcm16(AesKeySize::Aes128);
        assert_eq!(gcm128.encr_key_len(), 20);
        assert_eq!(gcm128.keymat_len(), 20);
        assert_eq!(Suite::AesGcm16(AesKeySize::Aes256).encr_key_len(), 36);
        let cbc = Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha512_256);
        assert_eq!(cbc.keymat_len(), 32 + 64);
        assert_eq!(cbc.icv_len(), 32);
        assert_eq!(
            Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha1_96).icv_len(),
            12
        );
        for s in Suite::ALL {
            assert!(s.headroom() <= MAX_HEADROOM);
            assert!(s.tailroom() <= MAX_TAILROOM);
            assert!(s.aes_block_tailroom() <= MAX_TAILROOM);
        }
    }

    #[test]
    fn padding_reaches_block_alignment() {
        for s in Suite::ALL {
            for len in 0..100 {
                let p = s.pad_len(len);
                assert!(p < s.block_size());
                assert_eq!((len + p + 2) % s.block_size(), 0);
                let wide = s.aes_block_pad_len(len);
                assert!(wide < 16 && wide >= p);
                assert_eq!((len + wide + 2) % 16, 0);
            }
        }
    }

    #[test]
    fn max_inner_len_is_the_largest_that_fits() {
        for s in Suite::ALL {
            for room in 0..200 {
                let fits = |len: usize| len + s.overhead(len) <= room;
                match s.max_inner_len(room) {
                    Some(max) => assert!(fits(max) && !fits(max + 1), "{s} {room}: {max}"),
                    None => assert!(!fits(0), "{s} {room}"),
                }
            }
        }
        // 1500-byte underlay, IPv4 and UDP (28 bytes): the usual tunnel MTUs.
        let gcm = Suite::AesGcm16(AesKeySize::Aes128);
        assert_eq!(gcm.max_inner_len(1472), Some(1438));
        let cbc = Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha256_128);
        assert_eq!(cbc.max_inner_len(1472), Some(1422));
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_name(s.name()), Some(s));
            assert_eq!(s.to_string(), s.name());
        }
        assert_eq!(
            Suite::from_name("AES256-SHA256"),
            Some(Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha256_128))
        );
        assert_eq!(Suite::from_name("aes192gcm16"), None);
    }

    #[test]
    fn ikev2_ids_map_to_suites() {
        assert_eq!(
            Suite::from_ikev2(20, 256, None),
            Some(Suite::AesGcm16(AesKeySize::Aes256))
        );
        assert_eq!(
            Suite::from_ikev2(12, 128, Some(2)),
            Some(Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha1_96))
        );
        assert_eq!(Suite::from_ikev2(20, 128, Some(12)), None);
        assert_eq!(Suite::from_ikev2(12, 128, None), None);
        assert_eq!(Suite::from_ikev2(12, 192, Some(12)), None);
    }
}
