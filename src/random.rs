//! Random bytes from the kernel, for secrets and unpredictable ids (cookie secrets, RRL and
//! name-hash keys, query ids).
//!
//! On Linux this calls getrandom(2) through libc directly. The `getrandom` crate finds the
//! call with `dlsym`, which a statically linked binary (the release image's) does not have, and
//! then falls back to opening `/dev/urandom`: a pod or chroot without `/dev` would then have no
//! randomness at all. The system call needs no file.

/// Fills `buf` with random bytes; panics only if the kernel has no random source at all.
pub fn fill(buf: &mut [u8]) {
    #[cfg(target_os = "linux")]
    {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: writes at most rest.len() bytes into rest.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n > 0 {
                done += n as usize;
                continue;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // ENOSYS (a kernel before 3.17) or a seccomp filter: the crate's fallbacks
            getrandom::fill(rest).expect("the operating system's random source");
            return;
        }
    }
    #[cfg(not(target_os = "linux"))]
    getrandom::fill(buf).expect("the operating system's random source");
}

#[cfg(test)]
mod tests {
    #[test]
    fn fills_every_byte_and_differs_between_calls() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        super::fill(&mut a);
        super::fill(&mut b);
        assert_ne!(a, b);
        // 64 random bytes with no zero at all: about 78% likely; with none of them set, 2^-512
        assert!(a.iter().any(|x| *x != 0));
        let mut empty: [u8; 0] = [];
        super::fill(&mut empty);
    }
}
