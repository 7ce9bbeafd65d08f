//! CPU time and memory of a server's whole process tree, and the machine's load and TIME_WAIT
//! sockets, from /proc.

use std::collections::HashMap;
use std::fs;

/// `root` and all its descendants (forking servers have one or two processes per session).
pub fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1).and_then(|s| s.parse().ok()))
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c.iter().copied());
        }
        i += 1;
    }
    out
}

/// The fields of /proc/PID/stat after the command name: state, ppid, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU seconds (user + system) used by the tree so far, including reaped children
/// (sessions that ended are counted in their parent's cutime/cstime).
pub fn cpu_seconds(root: u32) -> f64 {
    let mut ticks = 0u64;
    for pid in tree(root) {
        if let Some(f) = stat_fields(pid) {
            // utime, stime, cutime, cstime are fields 14-17 of stat; index 11-14 here.
            for i in 11..=14 {
                ticks += f
                    .get(i)
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0)
                    .max(0) as u64;
            }
        }
    }
    ticks as f64 / ticks_per_second()
}

/// Proportional set size of the whole tree, in KiB.
pub fn pss_kib(root: u32) -> u64 {
    let mut total = 0;
    for pid in tree(root) {
        if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("Pss:") {
                    total += rest
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap_or(0);
                }
            }
        }
    }
    total
}

/// Open file descriptors of the whole tree.
pub fn open_fds(root: u32) -> usize {
    tree(root)
        .into_iter()
        .map(|pid| fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()))
        .sum()
}

/// Number of processes in the tree.
pub fn count(root: u32) -> usize {
    tree(root).len()
}

/// Raises the soft file-descriptor limit to the hard one (10,000 sessions need ~20,000).
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            return r.rlim_cur;
        }
    }
    0
}

/// TCP sockets in TIME_WAIT in this network namespace (`/proc/net/sockstat`).
pub fn time_wait_sockets() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let tcp = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = tcp.split_whitespace();
    while let Some(w) = words.next() {
        if w == "tw" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// The 1, 5 and 15-minute load averages as /proc/loadavg gives them (empty if unreadable).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU seconds (user + system) of this process's children that have ended and been
/// waited for: a client subprocess's own CPU, read before it starts and after `wait`.
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes one `rusage` into memory this function owns.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
