//! The BGP message header (RFC 4271 section 4.1) and the five message types.

use super::attrs::{CodecContext, PathAttributes};
use super::error::DecodeError;
use super::notification::Notification;
use super::open::Open;
use super::update::Update;
use crate::Ipv4Prefix;

pub const MARKER_LEN: usize = 16;
pub const HEADER_LEN: usize = 19;
pub const MAX_MESSAGE_LEN: usize = 4096;

const TYPE_OPEN: u8 = 1;
const TYPE_UPDATE: u8 = 2;
const TYPE_NOTIFICATION: u8 = 3;
const TYPE_KEEPALIVE: u8 = 4;
const TYPE_ROUTE_REFRESH: u8 = 5;

/// ROUTE-REFRESH (RFC 2918); `subtype` is the reserved octet that RFC 7313 reuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    pub subtype: u8,
    pub safi: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// Checks the marker and the length field of a header; returns the message length.
pub(crate) fn check_header(header: &[u8]) -> Result<usize, DecodeError> {
    let marker = header.get(..MARKER_LEN).ok_or(DecodeError::BadLength(0))?;
    if marker.iter().any(|&b| b != 0xff) {
        return Err(DecodeError::BadMarker);
    }
    let len = match header.get(MARKER_LEN..HEADER_LEN - 1) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => return Err(DecodeError::BadLength(0)),
    };
    if usize::from(len) < HEADER_LEN || usize::from(len) > MAX_MESSAGE_LEN {
        return Err(DecodeError::BadLength(len));
    }
    Ok(usize::from(len))
}

impl Message {
    /// Decodes one whole message (header included), as cut by `Framer`.
    pub fn decode(msg: &[u8], ctx: CodecContext) -> Result<Self, DecodeError> {
        let len = check_header(msg)?;
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        if len != msg.len() {
            return Err(DecodeError::BadLength(len16));
        }
        let msg_type = *msg
            .get(HEADER_LEN - 1)
            .ok_or(DecodeError::BadLength(len16))?;
        let body = msg.get(HEADER_LEN..).ok_or(DecodeError::BadLength(len16))?;
        // Per-type length limits (RFC 4271 section 6.1, RFC 2918 section 3).
        let len_ok = match msg_type {
            TYPE_OPEN => len >= 29,
            TYPE_UPDATE => len >= 23,
            TYPE_NOTIFICATION => len >= 21,
            TYPE_KEEPALIVE => len == HEADER_LEN,
            TYPE_ROUTE_REFRESH => len == 23,
            other => return Err(DecodeError::BadType(other)),
        };
        if !len_ok {
            return Err(DecodeError::BadLength(len16));
        }
        Ok(match msg_type {
            TYPE_OPEN => Self::Open(Open::decode_body(body)?),
            TYPE_UPDATE => Self::Update(Update::decode_body(body, ctx)?),
            TYPE_NOTIFICATION => match body {
                [code, subcode, data @ ..] => {
                    Self::Notification(Notification::new(*code, *subcode, data.to_vec()))
                }
                _ => return Err(DecodeError::BadLength(len16)),
            },
            TYPE_KEEPALIVE => Self::Keepalive,
            _ => match body {
                [a0, a1, subtype, safi] => Self::RouteRefresh(RouteRefresh {
                    afi: u16::from_be_bytes([*a0, *a1]),
                    subtype: *subtype,
                    safi: *safi,
                }),
                _ => return Err(DecodeError::BadLength(len16)),
            },
        })
    }

    /// Encodes the message with its header. NOTIFICATION data is cut to fit 4096 octets;
    /// UPDATEs must be sized by the caller (`encode_announcements` and
    /// `encode_withdrawals` do that).
    pub fn encode(&self, ctx: CodecContext) -> Vec<u8> {
        let mut out = vec![0xff; MARKER_LEN];
        out.extend_from_slice(&[0, 0, self.type_code()]);
        match self {
            Self::Open(o) => o.encode_body(&mut out),
            Self::Update(u) => u.encode_body(ctx, &mut out),
            Self::Notification(n) => {
                n.encode_body(&mut out);
                // Diagnostic data may be long; cut it rather than send an illegal length.
                out.truncate(MAX_MESSAGE_LEN);
            }
            Self::Keepalive => {}
            Self::RouteRefresh(rr) => {
                out.extend_from_slice(&rr.afi.to_be_bytes());
                out.extend_from_slice(&[rr.subtype, rr.safi]);
            }
        }
        let len = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
        if let Some(field) = out.get_mut(MARKER_LEN..HEADER_LEN - 1) {
            field.copy_from_slice(&len);
        }
        out
    }

    fn type_code(&self) -> u8 {
        match self {
            Self::Open(_) => TYPE_OPEN,
            Self::Update(_) => TYPE_UPDATE,
            Self::Notification(_) => TYPE_NOTIFICATION,
            Self::Keepalive => TYPE_KEEPALIVE,
            Self::RouteRefresh(_) => TYPE_ROUTE_REFRESH,
        }
    }
}

/// UPDATE messages announcing `prefixes` with `attrs`, packed up to 4096 octets each.
pub fn encode_announcements(
    attrs: &PathAttributes,
    prefixes: &[Ipv4Prefix],
    ctx: CodecContext,
) -> Vec<Vec<u8>> {
    let mut a = Vec::new();
    attrs.encode(ctx, &mut a);
    // Header, two length fields and the attributes come before the NLRI.
    let room = MAX_MESSAGE_LEN.saturating_sub(HEADER_LEN + 4 + a.len());
    pack(prefixes, room)
        .into_iter()
        .map(|chunk| {
            Message::Update(Update {
                attributes: attrs.clone(),
                nlri: chunk.to_vec(),
                ..Default::default()
            })
            .encode(ctx)
        })
        .collect()
}

/// UPDATE messages withdrawing `prefixes`, packed up to 4096 octets each.
pub fn encode_withdrawals(prefixes: &[Ipv4Prefix], ctx: CodecContext) -> Vec<Vec<u8>> {
    let room = MAX_MESSAGE_LEN - HEADER_LEN - 4;
    pack(prefixes, room)
        .into_iter()
        .map(|chunk| {
            Message::Update(Update {
                withdrawn: chunk.to_vec(),
                ..Default::default()
            })
            .encode(ctx)
        })
        .collect()
}

/// Splits prefixes into runs whose NLRI encoding fits in `room` octets.
fn pack(prefixes: &[Ipv4Prefix], room: usize) -> Vec<&[Ipv4Prefix]> {
    let mut out = Vec::new();
    let mut rest = prefixes;
    while !rest.is_empty() {
        let mut used = 0;
        let mut n = 0;
        for p in rest {
            let size = 1 + p.wire_octets();
            if used + size > room {
                break;
            }
            used += size;
            n += 1;
        }
        // A single prefix (at most 5 octets) always fits; guard against a zero room anyway.
        let n = n.max(1);
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}
