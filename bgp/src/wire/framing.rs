//! Cuts a TCP byte stream into whole BGP messages, across partial reads.

use super::error::DecodeError;
use super::message::{check_header, HEADER_LEN};

/// Accumulates stream bytes and yields complete messages.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, `Ok(None)` if more bytes are needed. A bad marker or
    /// length is fatal: the stream cannot be resynchronized.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = check_header(header)?;
        if self.buf.len() < len {
            return Ok(None);
        }
        Ok(Some(self.buf.drain(..len).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEPALIVE: [u8; 19] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0, 19, 4,
    ];

    #[test]
    fn byte_by_byte_delivery() {
        let mut f = Framer::new();
        let stream: Vec<u8> = KEEPALIVE.iter().chain(KEEPALIVE.iter()).copied().collect();
        let mut got = 0;
        for b in stream {
            f.push(&[b]);
            while let Some(m) = f.next_message().unwrap() {
                assert_eq!(m, KEEPALIVE);
                got += 1;
            }
        }
        assert_eq!(got, 2);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn bad_marker_and_length() {
        let mut f = Framer::new();
        let mut m = KEEPALIVE;
        m[3] = 0;
        f.push(&m);
        assert_eq!(f.next_message(), Err(DecodeError::BadMarker));
        let mut f = Framer::new();
        let mut m = KEEPALIVE;
        m[16..18].copy_from_slice(&18u16.to_be_bytes());
        f.push(&m);
        assert_eq!(f.next_message(), Err(DecodeError::BadLength(18)));
        let mut f = Framer::new();
        m[16..18].copy_from_slice(&4097u16.to_be_bytes());
        f.push(&m);
        assert_eq!(f.next_message(), Err(DecodeError::BadLength(4097)));
    }
}
