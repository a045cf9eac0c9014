//! Interop with strongSwan (kernel-libipsec) for each proposal set the IKE issue names,
//! both directions of initiation in one topology: strongSwan initiates tunnel 1, vpngw
//! initiates tunnel 2. strongSwan's `list-sas` must show the algorithms we negotiated
//! and the SPIs in our status, and traffic must cross.

use std::time::Duration;

use e2e::charon::{find_up, summary, IkeSa, StartAction};
use e2e::{
    ping, plan, skip_unless_root, Charon, CharonConfig, PingOptions, Psk, Side, SiteToSite, Vpngw,
    VpngwConfig, VpngwStatus,
};

const UP: Duration = Duration::from_secs(30);

/// What strongSwan must report for one proposal set, and what we must.
struct Suite {
    ike: &'static str,
    esp: &'static str,
    /// strongSwan's IKE SA: encryption, key size, integrity, PRF, DH group.
    ike_algs: (
        &'static str,
        u32,
        Option<&'static str>,
        &'static str,
        &'static str,
    ),
    /// strongSwan's CHILD SA: encryption, key size, integrity.
    esp_algs: (&'static str, u32, Option<&'static str>),
    /// Our `ike.proposal` in status (the negotiated one, proposal syntax).
    ours_ike: &'static str,
}

fn psks() -> [Psk; 2] {
    [
        Psk::from("vpngw-suite-psk-one"),
        Psk::from("vpngw-suite-psk-two"),
    ]
}

fn check(ours: &VpngwStatus, theirs: &[IkeSa], suite: &Suite) -> anyhow::Result<()> {
    for t in &plan::TUNNELS {
        let sa = find_up(theirs, t.name)
            .ok_or_else(|| anyhow::anyhow!("{} down:\n{}", t.name, summary(theirs)))?;
        let got = (
            sa.encr_alg.as_deref(),
            sa.encr_keysize,
            sa.integ_alg.as_deref(),
            sa.prf_alg.as_deref(),
            sa.dh_group.as_deref(),
        );
        let (e, k, i, p, d) = suite.ike_algs;
        anyhow::ensure!(
            got == (Some(e), Some(k), i, Some(p), Some(d)),
            "{} IKE SA at strongSwan: {got:?}",
            t.name
        );
        let child = sa
            .installed_children()
            .find(|c| c.name == t.name)
            .ok_or_else(|| anyhow::anyhow!("{}: no installed CHILD SA", t.name))?;
        let got = (
            child.encr_alg.as_deref(),
            child.encr_keysize,
            child.integ_alg.as_deref(),
        );
        let (e, k, i) = suite.esp_algs;
        anyhow::ensure!(
            got == (Some(e), Some(k), i),
            "{} CHILD SA at strongSwan: {got:?}",
            t.name
        );

        let ours = ours
            .tunnel(t.name)
            .ok_or_else(|| anyhow::anyhow!("{} missing in vpngw status", t.name))?;
        let ike = ours
            .ike
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{}: no IKE SA in our status", t.name))?;
        anyhow::ensure!(
            ike.spi_i == format!("{:016x}", sa.initiator_spi)
                && ike.spi_r == format!("{:016x}", sa.responder_spi),
            "{}: IKE SPIs ours {ike:?}, strongSwan {:016x}/{:016x}",
            t.name,
            sa.initiator_spi,
            sa.responder_spi
        );
        anyhow::ensure!(
            ike.proposal == suite.ours_ike,
            "{}: our IKE proposal {}",
            t.name,
            ike.proposal
        );
        let mirrored = ours
            .child_sas
            .iter()
            .find(|o| o.spi_in() == child.spi_out && o.spi_out() == child.spi_in);
        anyhow::ensure!(
            mirrored.is_some_and(|o| o.proposal == suite.esp),
            "{}: strongSwan SPIs in {:08x} out {:08x}, ours {:?}",
            t.name,
            child.spi_in,
            child.spi_out,
            ours.child_sas
        );
    }
    // Tunnel 1 was strongSwan's to start, tunnel 2 ours.
    let initiated = |name| find_up(theirs, name).map(|sa| sa.initiator);
    anyhow::ensure!(
        initiated("tunnel1") == Some(true) && initiated("tunnel2") == Some(false),
        "initiators: tunnel1 {:?}, tunnel2 {:?}",
        initiated("tunnel1"),
        initiated("tunnel2")
    );
    Ok(())
}

fn run(name: &str, suite: &Suite) -> anyhow::Result<()> {
    if skip_unless_root(name) {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut theirs = CharonConfig::site_to_site(Side::Cloud, psks());
    for t in &mut theirs.tunnels {
        t.ike_proposals = suite.ike.into();
        t.esp_proposals = suite.esp.into();
        t.start_action = if t.name == "tunnel1" {
            StartAction::Start
        } else {
            StartAction::None
        };
    }
    let mut cloud = Charon::start(s2s.cloud_gw(), &theirs)?;
    e2e::wait_until("ipsec0", Duration::from_secs(10), || {
        s2s.cloud_gw().ip(&["link", "show", e2e::IPSEC_DEV]).is_ok()
    })?;
    s2s.cloud_gw()
        .ip(&["route", "replace", plan::IDC_PREFIX, "dev", e2e::IPSEC_DEV])?;

    let mut ours = VpngwConfig::for_plan(Side::Customer, psks());
    for t in &mut ours.tunnels {
        t.ike_proposals = suite.ike.into();
        t.esp_proposals = suite.esp.into();
        t.start_action = if t.name == "tunnel2" {
            "initiate"
        } else {
            "respond"
        }
        .into();
    }
    let mut vpngw = Vpngw::start(s2s.customer_gw(), &ours)?;
    let status = vpngw.wait_up(&["tunnel1", "tunnel2"], UP)?;
    let sas = cloud.wait_up(&["tunnel1", "tunnel2"], UP)?;
    check(&status, &sas, suite)?;

    let opts = PingOptions::default();
    let a = ping(s2s.vpc_host(), plan::IDC_HOST.into(), &opts)?;
    anyhow::ensure!(a.all_replied(), "VPC -> IDC: {a:?}");
    let b = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(b.all_replied(), "IDC -> VPC: {b:?}");
    Ok(())
}

#[test]
fn aes128gcm16_prfsha256_modp2048() -> anyhow::Result<()> {
    run(
        "aes128gcm16_prfsha256_modp2048",
        &Suite {
            ike: "aes128gcm16-prfsha256-modp2048",
            esp: "aes128gcm16",
            ike_algs: ("AES_GCM_16", 128, None, "PRF_HMAC_SHA2_256", "MODP_2048"),
            esp_algs: ("AES_GCM_16", 128, None),
            ours_ike: "aes128gcm16-prfsha256-modp2048",
        },
    )
}

#[test]
fn aes256_sha256_ecp256() -> anyhow::Result<()> {
    run(
        "aes256_sha256_ecp256",
        &Suite {
            ike: "aes256-sha256-ecp256",
            esp: "aes256-sha256",
            ike_algs: (
                "AES_CBC",
                256,
                Some("HMAC_SHA2_256_128"),
                "PRF_HMAC_SHA2_256",
                "ECP_256",
            ),
            esp_algs: ("AES_CBC", 256, Some("HMAC_SHA2_256_128")),
            ours_ike: "aes256-sha256-prfsha256-ecp256",
        },
    )
}

#[test]
fn aes128_sha1_modp2048() -> anyhow::Result<()> {
    run(
        "aes128_sha1_modp2048",
        &Suite {
            ike: "aes128-sha1-modp2048",
            esp: "aes128-sha1",
            ike_algs: (
                "AES_CBC",
                128,
                Some("HMAC_SHA1_96"),
                "PRF_HMAC_SHA1",
                "MODP_2048",
            ),
            esp_algs: ("AES_CBC", 128, Some("HMAC_SHA1_96")),
            ours_ike: "aes128-sha1-prfsha1-modp2048",
        },
    )
}

#[test]
fn aes256gcm16_prfsha384_curve25519() -> anyhow::Result<()> {
    run(
        "aes256gcm16_prfsha384_curve25519",
        &Suite {
            ike: "aes256gcm16-prfsha384-curve25519",
            esp: "aes256gcm16",
            ike_algs: ("AES_GCM_16", 256, None, "PRF_HMAC_SHA2_384", "CURVE_25519"),
            esp_algs: ("AES_GCM_16", 256, None),
            ours_ike: "aes256gcm16-prfsha384-curve25519",
        },
    )
}
