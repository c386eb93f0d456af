//! The sandbox helper: `codex` started again as `codex __sandbox-exec POLICY -- PROGRAM
//! ARGS...` (see `launch.rs`), single-threaded, before any runtime starts. It turns the
//! policy into kernel state, then executes the program.
//!
//! ```text
//! helper (child of codex; first PR_SET_PDEATHSIG = SIGKILL, and exit if codex is gone)
//!   unshare(user, mount, PID, and network when denied on Landlock ABI < 6); map its
//!   own uid/gid
//!   fork ───────────────▶ init: PID 1 of the new PID namespace
//!   wait; end as the        PR_SET_PDEATHSIG = SIGKILL (dies with the helper)
//!   program ended (its      mounts: private propagation, a fresh /proc (only this
//!   exit status, or its       namespace's processes), protected paths bind-mounted
//!   signal re-raised)         read-only (.git, .codex, $CODEX_HOME)
//!                           rlimits; empty capability bounding set
//!                           Landlock (no_new_privs), seccomp
//!                           fork ─────────────▶ execve(PROGRAM)
//!                           reap every child until PROGRAM ends; send its wait
//!                           status to the helper (a pipe); exit
//! ```
//!
//! Why this shape. A PID namespace dies with its PID 1: when the program ends, init
//! exits and the kernel kills everything the program left behind (`setsid -f`, daemons,
//! `nohup`); when codex dies (even by SIGKILL) the helper and then init get SIGKILL
//! through `PR_SET_PDEATHSIG`, taking the namespace with them. The program is not PID 1
//! itself: the kernel drops signals that PID 1 has no handler for, such as the SIGXCPU of
//! its CPU limit. The user namespace makes the other namespaces available without
//! privileges and leaves a root codex's children no capability over the host. A program
//! without network gets no socket but a Unix one (seccomp), or, on kernels whose Landlock
//! cannot scope abstract Unix sockets, a fresh network namespace with only a down loopback
//! (see `policy::NetworkDenial`). Protected paths are *mounted* read-only because Landlock
//! cannot take a right back inside a tree it granted; seccomp (no `mount`/`umount2`) and
//! Landlock (which forbids mount changes to a sandboxed process) keep those mounts in place.
//! Setup errors exit with [`SETUP_FAILED`] and a line starting with [`ERROR_PREFIX`] on
//! stderr, which codex turns into a tool error.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use super::policy::{NetworkDenial, SandboxPolicy};
use super::{fs_rules, seccomp};

/// The first argument that makes `codex` the sandbox helper.
pub const HELPER_ARG: &str = "__sandbox-exec";
/// The helper's exit status when the sandbox could not be set up.
pub const SETUP_FAILED: i32 = 125;
/// How the helper's own error lines start on stderr.
pub const ERROR_PREFIX: &str = "codex sandbox: ";
/// The environment variable naming the call's private temporary directory for the helper.
pub const TEMP_VAR: &str = "CODEX_SANDBOX_TMP";
/// The environment variable naming the process id of the codex that started the helper.
pub const PARENT_VAR: &str = "CODEX_SANDBOX_PARENT";

/// Runs the helper and exits if this process was started as one; returns otherwise.
/// Call it first thing in `main`.
pub fn run_if_helper() {
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() != Some(HELPER_ARG.as_ref()) {
        return;
    }
    die_with_codex();
    let args: Vec<OsString> = args.collect();
    let err = helper(&args);
    eprintln!("{ERROR_PREFIX}{err}");
    std::process::exit(SETUP_FAILED);
}

/// SIGKILL when codex dies; if it already died (this process's parent is no longer the
/// codex named in [`PARENT_VAR`]), exit now: never run orphaned.
fn die_with_codex() {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0 {
        eprintln!("{ERROR_PREFIX}{}", os_err("PR_SET_PDEATHSIG"));
        std::process::exit(SETUP_FAILED);
    }
    let parent = std::env::var(PARENT_VAR)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    // SAFETY: getppid takes no arguments.
    if parent.is_some_and(|p| p != unsafe { libc::getppid() }) {
        std::process::exit(SETUP_FAILED);
    }
}

/// Parses `POLICY -- PROGRAM ARGS...`, sets the sandbox up and executes the program.
/// Returns only on failure, with why.
fn helper(args: &[OsString]) -> String {
    let (policy, program, rest) = match parse(args) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let temp = std::env::var_os(TEMP_VAR).map(PathBuf::from);
    let report = match enter(&policy) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    if let Err(e) = confine(&policy, temp.as_deref()) {
        return e;
    }
    // SAFETY: init is single-threaded.
    match unsafe { libc::fork() } {
        -1 => os_err("fork"),
        0 => {
            // SAFETY: the program does not need the status pipe.
            unsafe { libc::close(report) };
            let err = std::process::Command::new(&program)
                .args(rest)
                .env_remove(TEMP_VAR)
                .env_remove(PARENT_VAR)
                .exec();
            format!("cannot run {}: {err}", program.display())
        }
        child => reap_until(child, report),
    }
}

/// In init: reaps every process of the namespace until `program` ends, then sends its wait
/// status to the helper and exits (which kills what is left in the namespace).
fn reap_until(program: libc::pid_t, report: libc::c_int) -> ! {
    loop {
        let mut status = 0;
        // SAFETY: valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == program {
            let bytes = status.to_ne_bytes();
            // SAFETY: writing 4 bytes from a live buffer.
            unsafe { libc::write(report, bytes.as_ptr().cast(), bytes.len()) };
            std::process::exit(0);
        }
        if pid == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            std::process::exit(SETUP_FAILED);
        }
    }
}

fn parse(args: &[OsString]) -> Result<(SandboxPolicy, PathBuf, &[OsString]), String> {
    let [policy, sep, program, rest @ ..] = args else {
        return Err("usage: codex __sandbox-exec POLICY -- PROGRAM [ARGS...]".into());
    };
    if sep != "--" {
        return Err("expected `--` after the policy".into());
    }
    let policy: SandboxPolicy = serde_json::from_slice(policy.as_bytes())
        .map_err(|e| format!("the policy argument is not a sandbox policy: {e}"))?;
    Ok((policy, PathBuf::from(program), rest))
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Creates the namespaces and forks; returns in the child (PID 1 of the new namespace)
/// the descriptor on which to report the program's wait status. The parent waits for it
/// and exits the way the program did.
fn enter(policy: &SandboxPolicy) -> Result<libc::c_int, String> {
    // SAFETY: plain system calls without pointers.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID;
    if !policy.network && policy.network_denial == NetworkDenial::Namespace {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare takes flags only.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(os_err("cannot create the namespaces (unshare)"));
    }
    std::fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))
        .map_err(|e| format!("uid_map: {e}"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))
        .map_err(|e| format!("gid_map: {e}"))?;
    let (mut alive, mut report) = ([0; 2], [0; 2]);
    // SAFETY: each array has room for the two descriptors.
    let piped = unsafe {
        libc::pipe2(alive.as_mut_ptr(), libc::O_CLOEXEC) == 0
            && libc::pipe2(report.as_mut_ptr(), libc::O_CLOEXEC) == 0
    };
    if !piped {
        return Err(os_err("pipe"));
    }
    // SAFETY: this process is single-threaded (the helper runs before any runtime), so
    // the child may go on running ordinary code.
    match unsafe { libc::fork() } {
        -1 => Err(os_err("fork")),
        0 => {
            // SAFETY: closing our copies of the ends the parent uses.
            unsafe {
                libc::close(alive[1]);
                libc::close(report[0]);
            }
            die_with_parent(alive[0])?;
            Ok(report[1])
        }
        child => {
            // SAFETY: closing the child's ends.
            unsafe {
                libc::close(alive[0]);
                libc::close(report[1]);
            }
            wait_and_exit(child, report[0])
        }
    }
}

/// In the child: SIGKILL when the helper dies; if it already died, exit now.
fn die_with_parent(alive: libc::c_int) -> Result<(), String> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0 {
        return Err(os_err("PR_SET_PDEATHSIG"));
    }
    let mut poll = libc::pollfd {
        fd: alive,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; zero timeout.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(alive) };
    if ready > 0 && poll.revents & libc::POLLHUP != 0 {
        // The helper is gone: the write end has no owner left.
        std::process::exit(SETUP_FAILED);
    }
    Ok(())
}

/// In the helper: waits for init and ends as the program ended (as init did if it never
/// reported: the setup failed).
fn wait_and_exit(child: libc::pid_t, report: libc::c_int) -> ! {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child {
            break;
        }
        if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            std::process::exit(SETUP_FAILED);
        }
    }
    let mut bytes = [0u8; 4];
    // SAFETY: reading at most 4 bytes into a live buffer; init has exited, so the pipe is
    // closed and the read does not block.
    let n = unsafe { libc::read(report, bytes.as_mut_ptr().cast(), bytes.len()) };
    if n == 4 {
        status = i32::from_ne_bytes(bytes);
    }
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    let signal = libc::WTERMSIG(status);
    // Die of the same signal, so codex sees what killed the program (no core file).
    // SAFETY: resetting a disposition and raising a signal at ourselves.
    unsafe {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    std::process::exit(128 + signal);
}

/// In PID 1: mounts, limits, Landlock, seccomp.
fn confine(policy: &SandboxPolicy, temp: Option<&Path>) -> Result<(), String> {
    mount_private_root()?;
    mount_proc()?;
    for path in &policy.protected {
        read_only(path)?;
    }
    for path in &policy.hidden {
        mask(path)?;
    }
    set_limits(policy)?;
    drop_capabilities();
    fs_rules::restrict(policy, temp)?;
    let sockets = !policy.network && policy.network_denial == NetworkDenial::Seccomp;
    seccomp::apply(sockets)
}

fn c_path(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("bad path {}", path.display()))
}

fn mount_private_root() -> Result<(), String> {
    // SAFETY: valid C strings or nulls, as mount(2) takes them.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(os_err("cannot make the mounts private"));
    }
    Ok(())
}

/// A fresh `/proc`: only the processes of this PID namespace (not codex's) are in it.
fn mount_proc() -> Result<(), String> {
    // SAFETY: valid C strings or nulls.
    let r = unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(os_err("cannot mount /proc"));
    }
    Ok(())
}

/// Hides `path` (a file or a directory; not a symbolic link; skipped if absent): a file
/// becomes `/dev/null`, a directory an empty read-only tmpfs with mode 000. Cheaper than
/// granting every sibling in Landlock, and just as final: the program cannot unmount it.
fn mask(path: &Path) -> Result<(), String> {
    let dir = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return Ok(()),
        Ok(m) => m.is_dir(),
        Err(_) => return Ok(()),
    };
    let c = c_path(path)?;
    // SAFETY: valid C strings or nulls.
    let r = unsafe {
        if dir {
            libc::mount(
                c"tmpfs".as_ptr(),
                c.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"size=4k,mode=000".as_ptr().cast(),
            )
        } else {
            libc::mount(
                c"/dev/null".as_ptr(),
                c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        }
    };
    if r != 0 {
        return Err(os_err(&format!("cannot hide {}", path.display())));
    }
    Ok(())
}

/// Bind-mounts `path` (a directory or a file, not a symbolic link) on itself, read-only
/// with everything below it. A path that does not exist is skipped.
fn read_only(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_symlink() => {}
        _ => return Ok(()),
    }
    let c = c_path(path)?;
    // SAFETY: valid C strings or nulls.
    let r = unsafe {
        libc::mount(
            c.as_ptr(),
            c.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(os_err(&format!("cannot bind-mount {}", path.display())));
    }
    // mount_setattr changes only the flag asked for, so the flags a user namespace may
    // not clear (nosuid, nodev of the original mount) stay as they were.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `attr` lives across the call and its size is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(os_err(&format!("cannot make {} read-only", path.display())));
    }
    Ok(())
}

fn set_limits(policy: &SandboxPolicy) -> Result<(), String> {
    let l = &policy.limits;
    const MIB: u64 = 1024 * 1024;
    let limits = [
        (libc::RLIMIT_CPU, l.cpu_secs, "cpu_secs"),
        (
            libc::RLIMIT_AS,
            l.memory_mb.saturating_mul(MIB),
            "memory_mb",
        ),
        (
            libc::RLIMIT_FSIZE,
            l.file_size_mb.saturating_mul(MIB),
            "file_size_mb",
        ),
        (libc::RLIMIT_NPROC, l.processes, "processes"),
        (libc::RLIMIT_NOFILE, l.open_files, "open_files"),
        (libc::RLIMIT_CORE, 0, "core"),
    ];
    for (resource, value, name) in limits {
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid out-pointer.
        unsafe { libc::getrlimit(resource, &mut current) };
        // Never above the hard limit codex itself has (raising it needs privileges).
        let value = value.min(current.rlim_max);
        // RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL one second later.
        let hard = if resource == libc::RLIMIT_CPU {
            value.saturating_add(1).min(current.rlim_max)
        } else {
            value
        };
        let new = libc::rlimit {
            rlim_cur: value,
            rlim_max: hard,
        };
        // SAFETY: valid pointer to a filled rlimit.
        if unsafe { libc::setrlimit(resource, &new) } != 0 {
            return Err(os_err(&format!("cannot set the limit {name}")));
        }
    }
    Ok(())
}

/// Empties the capability bounding set, so a program that runs as root inside the user
/// namespace gets no capability when it executes. (Outside its namespaces it has none
/// anyway.)
fn drop_capabilities() {
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments; unknown capabilities fail harmlessly.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_refuses_arguments_it_does_not_understand() {
        let args: Vec<OsString> = ["{}", "--", "/bin/true"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(parse(&args).unwrap_err().contains("not a sandbox policy"));
        let args: Vec<OsString> = ["x"].iter().map(OsString::from).collect();
        assert!(parse(&args).unwrap_err().starts_with("usage"));
    }
}
