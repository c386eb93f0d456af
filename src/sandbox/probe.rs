//! What this kernel offers the sandbox: the Landlock ABI, unprivileged user namespaces
//! (with mount, PID and network namespaces inside), and seccomp. Asked once per run
//! before any agent starts ([`Support::probe`]), and by `codex sandbox check`.

use std::process::Command;

use serde::Serialize;

/// The lowest Landlock ABI the sandbox runs on (ABI 1: Linux 5.13). Newer ABIs add rights
/// (`refer` in 2, `truncate` in 3, device ioctls in 5, signal and abstract-socket scoping
/// in 6); the sandbox uses what the kernel has and names it in the audit record.
pub const MIN_LANDLOCK_ABI: i32 = 1;

/// The sandbox features of this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Support {
    /// The Landlock ABI version, or why there is none.
    pub landlock: Result<i32, String>,
    /// Whether this process can create a user namespace with mount, PID and network
    /// namespaces (unprivileged, as the sandbox does), or why not.
    pub namespaces: Result<(), String>,
    /// Whether seccomp filters are available, or why not.
    pub seccomp: Result<(), String>,
}

impl Support {
    /// Asks the kernel.
    pub fn probe() -> Self {
        Self {
            landlock: landlock_abi(),
            namespaces: namespaces(),
            seccomp: seccomp(),
        }
    }

    /// What the sandbox needs and this machine lacks, each with why; empty when it can run.
    pub fn missing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(why) = &self.landlock {
            out.push(format!("Landlock: {why}"));
        }
        if let Err(why) = &self.namespaces {
            out.push(format!("user namespaces: {why}"));
        }
        if let Err(why) = &self.seccomp {
            out.push(format!("seccomp: {why}"));
        }
        out
    }
}

fn landlock_abi() -> Result<i32, String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_long = 1;
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call only returns the
    // ABI version; it reads and writes no memory.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi < 0 {
        let err = std::io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENOSYS) => {
                "not built into this kernel (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)".into()
            }
            Some(libc::EOPNOTSUPP) => {
                "built in but not enabled (add `landlock` to the `lsm=` boot parameter)".into()
            }
            _ => format!("unavailable ({err})"),
        });
    }
    let abi = abi as i32;
    if abi < MIN_LANDLOCK_ABI {
        return Err(format!("ABI {abi} is older than {MIN_LANDLOCK_ABI}"));
    }
    Ok(abi)
}

/// Forks a child that only creates the namespaces and exits: no program is run.
fn namespaces() -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET;
    let mut cmd = Command::new("/");
    // SAFETY: the closure runs in the forked child and calls only async-signal-safe system
    // calls (unshare, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::_exit(0);
        });
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("the probe ended with {s}")),
        Err(e) => Err(format!(
            "cannot create them ({e}); enable unprivileged user namespaces \
             (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, \
             or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0)"
        )),
    }
}

/// Whether this kernel runs x32 system calls (x86-64 only; `CONFIG_X86_X32_ABI` and not
/// disabled at boot). Their numbers carry bit 30, so a seccomp filter keyed by the x86-64
/// numbers does not see them: where they run, the sandbox keeps programs off the network
/// with a network namespace rather than by refusing `socket(2)` (see
/// `policy::NetworkDenial`).
pub fn x32_syscalls() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
    // SAFETY: getpid takes no arguments and changes nothing, under any ABI.
    let r = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
    r >= 0
}

fn seccomp() -> Result<(), String> {
    // SAFETY: PR_GET_SECCOMP takes no pointer arguments.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    if mode < 0 {
        return Err(format!(
            "not available ({})",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_each_absent_feature_with_why() {
        let s = Support {
            landlock: Err("not enabled".into()),
            namespaces: Ok(()),
            seccomp: Err("nope".into()),
        };
        assert_eq!(s.missing(), ["Landlock: not enabled", "seccomp: nope"]);
    }

    #[test]
    fn x32_system_calls_are_detected_as_this_kernel_has_them() {
        // This machine's kernel is built without CONFIG_X86_X32_ABI (see
        // /proc/config.gz), as Debian's and most distributions' are by default.
        let config = std::process::Command::new("sh")
            .args([
                "-c",
                "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if config.contains("CONFIG_X86_X32_ABI=y") {
            return; // built in: whether it runs depends on the boot parameters
        }
        if cfg!(target_arch = "x86_64") && !config.is_empty() {
            assert!(!x32_syscalls());
        }
    }

    /// CI runs on machines that have the sandbox: this fails loudly where they do not.
    #[test]
    fn this_machine_supports_the_sandbox() {
        let s = Support::probe();
        assert!(s.missing().is_empty(), "{:?}", s.missing());
    }
}
