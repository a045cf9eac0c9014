//! IKE from an address that matches no tunnel: a protected request (as from a peer that
//! still holds an IKE SA we forgot) gets an unprotected INVALID_IKE_SPI notification,
//! at most 10 a second over all such senders, counted; an IKE_SA_INIT gets nothing.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use e2e::{
    enter_on_this_thread, plan, skip_unless_root, Psk, Side, SiteToSite, Vpngw, VpngwConfig,
};

/// An IKE header only: enough for the daemon to see a protected request of `exchange`.
fn header(exchange: u8, next_payload: u8, spi_r: [u8; 8], mid: u32) -> Vec<u8> {
    let mut m = vec![0x11; 8];
    m.extend_from_slice(&spi_r);
    m.extend_from_slice(&[next_payload, 0x20, exchange, 0x08]);
    m.extend_from_slice(&mid.to_be_bytes());
    m.extend_from_slice(&28u32.to_be_bytes());
    m
}

/// Sends each of `msgs` from UDP port 500 inside namespace `ns` to `to`; returns the
/// answers that arrived within a second after the last.
fn send_from(ns: &str, to: SocketAddr, msgs: Vec<Vec<u8>>) -> anyhow::Result<Vec<Vec<u8>>> {
    let ns = ns.to_owned();
    std::thread::spawn(move || -> anyhow::Result<Vec<Vec<u8>>> {
        enter_on_this_thread(&ns)?;
        let sock = UdpSocket::bind("0.0.0.0:500")?;
        sock.set_read_timeout(Some(Duration::from_secs(1)))?;
        for m in &msgs {
            sock.send_to(m, to)?;
        }
        let mut answers = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            answers.push(buf.get(..n).unwrap_or_default().to_vec());
        }
        Ok(answers)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("sender thread panicked"))?
}

#[test]
fn ike_from_unknown_addresses_gets_rate_limited_invalid_ike_spi() -> anyhow::Result<()> {
    if skip_unless_root("ike_from_unknown_addresses_gets_rate_limited_invalid_ike_spi") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let psks = [Psk::from("unknown-peer-one"), Psk::from("unknown-peer-two")];
    let gw = Vpngw::start(
        s2s.customer_gw(),
        &VpngwConfig::for_plan(Side::Customer, psks),
    )?;
    let to = SocketAddr::new(plan::CUSTOMER_GW_WAN.into(), 500);
    let idc = s2s.idc_host().name().to_owned();
    // An INFORMATIONAL request with an SK payload: answered.
    let answers = send_from(&idc, to, vec![header(37, 46, [0x22; 8], 5)])?;
    let [a] = &answers[..] else {
        anyhow::bail!("expected one answer, got {answers:02x?}");
    };
    anyhow::ensure!(
        a.get(..16) == Some(&[[0x11u8; 8], [0x22; 8]].concat()[..]),
        "SPIs: {a:02x?}"
    );
    anyhow::ensure!(a.get(16) == Some(&41), "first payload a notify: {a:02x?}");
    anyhow::ensure!(
        a.get(18..20) == Some(&[37, 0x20][..]),
        "INFORMATIONAL response: {a:02x?}"
    );
    anyhow::ensure!(
        a.get(20..24) == Some(&5u32.to_be_bytes()[..]),
        "message ID: {a:02x?}"
    );
    // Notify payload: generic header (4), protocol, SPI size, type.
    anyhow::ensure!(
        a.get(34..36) == Some(&4u16.to_be_bytes()[..]),
        "INVALID_IKE_SPI: {a:02x?}"
    );
    // IKE_SA_INIT, a zero responder SPI, an unprotected request: no answer.
    let quiet = send_from(
        &idc,
        to,
        vec![
            header(34, 33, [0; 8], 0),
            header(35, 46, [0; 8], 1),
            header(37, 41, [0x22; 8], 2),
        ],
    )?;
    anyhow::ensure!(quiet.is_empty(), "answered: {quiet:02x?}");
    // A burst: at most 10 answers a second.
    std::thread::sleep(Duration::from_millis(1100));
    let burst = send_from(
        &idc,
        to,
        (0..30).map(|i| header(37, 46, [0x22; 8], i)).collect(),
    )?;
    anyhow::ensure!(
        (1..=10).contains(&burst.len()),
        "{} answers to a burst of 30",
        burst.len()
    );
    let seen = gw.status()?.counter("ike_unknown_peer");
    let sent = gw.status()?.counter("ike_unknown_peer_invalid_spi");
    anyhow::ensure!(seen == 34, "ike_unknown_peer = {seen}");
    anyhow::ensure!(
        sent == 1 + burst.len() as u64,
        "ike_unknown_peer_invalid_spi = {sent}"
    );
    Ok(())
}
