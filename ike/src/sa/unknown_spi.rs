//! Answers to protected requests for IKE SAs we do not have (RFC 7296 2.21.4): an
//! unprotected INVALID_IKE_SPI notification with the request's SPIs and message ID, a
//! limited number per second. Responses and IKE_SA_INIT are never answered, and no state
//! is created.

use super::ike_sa::{datagram_from, NAT_T_PORT, NON_ESP_MARKER};
use crate::wire::{
    notify as nt, ExchangeType, Header, Message, Notify, Payload, PayloadType, FLAG_RESPONSE,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// INVALID_IKE_SPI notifications sent per second at most.
pub const INVALID_SPI_PER_SEC: u32 = 10;

/// The per-second budget of INVALID_IKE_SPI notifications.
#[derive(Debug, Clone, Copy, Default)]
pub struct InvalidSpiBudget {
    /// Start of the current second and notifications sent in it.
    window: Option<(Instant, u32)>,
}

impl InvalidSpiBudget {
    /// Takes one notification from the budget; `false` when this second's is used up.
    pub fn take(&mut self, now: Instant) -> bool {
        let (start, sent) = match self.window {
            Some((start, sent)) if now < start + Duration::from_secs(1) => (start, sent),
            _ => (now, 0),
        };
        if sent >= INVALID_SPI_PER_SEC {
            return false;
        }
        self.window = Some((start, sent + 1));
        true
    }
}

/// The datagram answering request header `h` received on `local` (with the non-ESP
/// marker on port 4500); `None` unless `h` is a protected request of an established
/// IKE SA (non-zero responder SPI, not IKE_SA_INIT).
pub fn reply(local: SocketAddr, h: &Header) -> Option<Vec<u8>> {
    let protected = h.next_payload == PayloadType::SK || h.next_payload == PayloadType::SKF;
    if h.is_response() || !protected || h.exchange == ExchangeType::IkeSaInit || h.spi_r == [0; 8] {
        return None;
    }
    let mut header = *h;
    header.exchange = ExchangeType::Informational;
    header.flags = FLAG_RESPONSE;
    let msg = Message {
        header,
        payloads: vec![Payload::Notify(Notify::new(nt::INVALID_IKE_SPI, vec![]))],
    };
    Some(datagram_from(local, &msg.encode()))
}

/// [`reply`] for a raw datagram as received on `local`: for IKE from an address no
/// tunnel has. `None` for anything that is not such a request (or not IKE at all).
pub fn reply_to_datagram(local: SocketAddr, datagram: &[u8]) -> Option<Vec<u8>> {
    let bytes = if local.port() == NAT_T_PORT {
        datagram.strip_prefix(&NON_ESP_MARKER[..])?
    } else {
        datagram
    };
    reply(local, &Header::decode(bytes).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(exchange: ExchangeType, next: u8, spi_r: [u8; 8], flags: u8) -> Vec<u8> {
        let mut out = Vec::new();
        Header {
            spi_i: [1; 8],
            spi_r,
            next_payload: next,
            version: 0x20,
            exchange,
            flags,
            message_id: 7,
            length: 28,
        }
        .encode(&mut out);
        out
    }

    #[test]
    fn only_protected_requests_of_established_sas_are_answered() {
        let l500: SocketAddr = "192.0.2.1:500".parse().unwrap();
        let l4500: SocketAddr = "192.0.2.1:4500".parse().unwrap();
        let req = request(ExchangeType::Informational, PayloadType::SK, [2; 8], 0x08);
        let out = reply_to_datagram(l500, &req).unwrap();
        let m = Message::decode(&out).unwrap();
        assert!(m.header.is_response());
        assert_eq!((m.header.spi_i, m.header.spi_r), ([1; 8], [2; 8]));
        assert_eq!(m.header.message_id, 7);
        assert!(matches!(&m.payloads[..], [Payload::Notify(n)] if n.ty == nt::INVALID_IKE_SPI));
        // On 4500 with the non-ESP marker, and only with it.
        let mut marked = NON_ESP_MARKER.to_vec();
        marked.extend_from_slice(&req);
        assert!(reply_to_datagram(l4500, &marked)
            .unwrap()
            .starts_with(&NON_ESP_MARKER));
        assert!(reply_to_datagram(l4500, &req).is_none());
        // Responses, IKE_SA_INIT, zero SPIr, unprotected, garbage: no answer.
        for bad in [
            request(ExchangeType::Informational, PayloadType::SK, [2; 8], 0x20),
            request(ExchangeType::IkeSaInit, PayloadType::SK, [2; 8], 0x08),
            request(ExchangeType::IkeAuth, PayloadType::SK, [0; 8], 0x08),
            request(
                ExchangeType::Informational,
                PayloadType::NOTIFY,
                [2; 8],
                0x08,
            ),
            vec![0xff; 10],
        ] {
            assert!(reply_to_datagram(l500, &bad).is_none(), "{bad:02x?}");
        }
    }

    #[test]
    fn budget_allows_ten_a_second() {
        let mut b = InvalidSpiBudget::default();
        let t0 = Instant::now();
        assert_eq!((0..15).filter(|_| b.take(t0)).count(), 10);
        assert!(!b.take(t0 + Duration::from_millis(999)));
        assert!(b.take(t0 + Duration::from_secs(1)));
    }
}
