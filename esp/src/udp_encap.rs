//! UDP encapsulation of ESP and IKE on port 4500 (RFC 3948).

/// Prefix that marks an IKE message on port 4500 (RFC 3948 2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The one-byte NAT-keepalive payload (RFC 3948 2.3).
pub const NAT_KEEPALIVE: [u8; 1] = [0xff];

/// What a UDP-4500 payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpPayload<'a> {
    /// An IKE message (the bytes after the non-ESP marker).
    Ike(&'a [u8]),
    NatKeepalive,
    /// An ESP packet (the whole payload) with this non-zero SPI.
    Esp {
        spi: u32,
    },
}

/// The payload fits none of the three forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    #[error("UDP payload of {0} bytes is neither IKE, keepalive nor ESP")]
    Malformed(usize),
}

/// Classifies a UDP payload received on port 4500.
pub fn classify(payload: &[u8]) -> Result<UdpPayload<'_>, ClassifyError> {
    match payload {
        [0xff] => Ok(UdpPayload::NatKeepalive),
        [0, 0, 0, 0, ike @ ..] => Ok(UdpPayload::Ike(ike)),
        // Not all-zero, so the SPI is non-zero; an ESP header is 8 bytes.
        [a, b, c, d, _, _, _, _, ..] => Ok(UdpPayload::Esp {
            spi: u32::from_be_bytes([*a, *b, *c, *d]),
        }),
        _ => Err(ClassifyError::Malformed(payload.len())),
    }
}

/// The NAT-keepalive payload to send.
pub fn nat_keepalive() -> [u8; 1] {
    NAT_KEEPALIVE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_three_forms() {
        assert_eq!(classify(&[0xff]), Ok(UdpPayload::NatKeepalive));
        assert_eq!(classify(&nat_keepalive()), Ok(UdpPayload::NatKeepalive));
        let ike = [0, 0, 0, 0, 0x11, 0x22, 0x33];
        assert_eq!(classify(&ike), Ok(UdpPayload::Ike(&[0x11, 0x22, 0x33])));
        let esp = [0x06, 0x8d, 0xb2, 0x78, 0, 0, 0, 1, 0xaa];
        assert_eq!(classify(&esp), Ok(UdpPayload::Esp { spi: 0x068d_b278 }));
    }

    #[test]
    fn rejects_short_or_odd_payloads() {
        assert_eq!(classify(&[]), Err(ClassifyError::Malformed(0)));
        assert_eq!(classify(&[0xfe]), Err(ClassifyError::Malformed(1)));
        assert_eq!(classify(&[0, 0, 0]), Err(ClassifyError::Malformed(3)));
        assert_eq!(classify(&[1, 2, 3, 4, 5]), Err(ClassifyError::Malformed(5)));
        assert_eq!(classify(&[0xff, 0xff]), Err(ClassifyError::Malformed(2)));
    }
}
