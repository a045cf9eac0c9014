//! Stopping workers that block in `poll` without a timeout: an eventfd every worker waits
//! on together with its own descriptor. Workers only wait when their descriptor had
//! nothing to read, so a busy worker makes no `poll` call at all.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

#[derive(Debug)]
pub struct StopEvent {
    fd: OwnedFd,
}

impl StopEvent {
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd has no pointer arguments; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(StopEvent {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Wakes every waiter, now and later (the counter is never read back).
    pub fn trigger(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until `fd` is readable (`true`) or the stop event fired (`false`).
    pub fn wait_readable(&self, fd: RawFd) -> io::Result<bool> {
        self.wait_readable_for(fd, None)
    }

    /// [`StopEvent::wait_readable`], but returns `true` after `timeout` at the latest.
    pub fn wait_readable_for(&self, fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
        let mut pfds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Rounded up: a timeout must not turn into a busy loop of zero-length polls.
        let ms = timeout.map_or(-1, |t| {
            i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
        });
        // SAFETY: two valid pollfds for the duration of the call.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), 2, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(true)
            } else {
                Err(e)
            };
        }
        Ok(pfds[1].revents == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_a_blocked_waiter() {
        let stop = std::sync::Arc::new(StopEvent::new().unwrap());
        let (r, _w) = std::os::unix::net::UnixStream::pair().unwrap();
        let s = stop.clone();
        let waiter = std::thread::spawn(move || s.wait_readable(r.as_raw_fd()).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(50));
        stop.trigger().unwrap();
        assert!(!waiter.join().unwrap(), "woken by the stop event");
    }

    #[test]
    fn a_timeout_ends_the_wait() {
        let stop = StopEvent::new().unwrap();
        let (r, _w) = std::os::unix::net::UnixStream::pair().unwrap();
        let t = std::time::Instant::now();
        let wait = Some(Duration::from_millis(20));
        assert!(stop.wait_readable_for(r.as_raw_fd(), wait).unwrap());
        assert!(t.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn readable_descriptor_returns_true() {
        use std::io::Write;
        let stop = StopEvent::new().unwrap();
        let (r, mut w) = std::os::unix::net::UnixStream::pair().unwrap();
        w.write_all(b"x").unwrap();
        assert!(stop.wait_readable(r.as_raw_fd()).unwrap());
    }
}
