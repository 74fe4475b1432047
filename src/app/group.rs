//! Whether any process of a process group is still alive.
//!
//! The app's processes can outlive the child recplay started: gunicorn's
//! workers are re-parented when their master dies, and they hold the
//! listening socket until they exit. A stop is only over when the whole
//! group is gone, so the next start cannot mistake a dying app for a ready
//! one. `kill(-pgid, 0)` alone is not enough: it also counts zombies, and
//! an orphaned zombie stays until whatever reaps orphans gets to it (in a
//! container, possibly never), although it holds no socket and runs no
//! code. So the group counts as alive while `/proc` lists a member that is
//! not a zombie.

use nix::errno::Errno;
use nix::sys::signal::killpg;
use nix::unistd::Pid;

/// True while a process of group `pgid`, other than a zombie, exists.
pub fn alive(pgid: Pid) -> bool {
    match killpg(pgid, None) {
        Err(Errno::ESRCH) => false,
        // EPERM: a process we may not signal still has the id; alive.
        Err(_) => true,
        Ok(()) => has_live_member(pgid).unwrap_or(true),
    }
}

/// Scans `/proc`; `None` when it cannot be read (then the caller trusts
/// `kill`).
fn has_live_member(pgid: Pid) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // The process may have gone since the directory was listed.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((state, group)) = state_and_group(&stat) {
            if group == pgid.as_raw() && state != 'Z' && state != 'X' {
                return Some(true);
            }
        }
    }
    Some(false)
}

/// The state letter and process group of a `/proc/PID/stat` line. The
/// command name in parentheses may hold spaces and parentheses itself, so
/// the fields are counted from the last `)`.
fn state_and_group(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, group))
}

#[cfg(test)]
mod tests {
    use super::state_and_group;

    #[test]
    fn stat_lines_are_read_past_odd_command_names() {
        let line = "4242 (gunicorn: worker [app) x]) S 4200 4100 4100 0 -1 4194560";
        assert_eq!(state_and_group(line), Some(('S', 4100)));
        assert_eq!(state_and_group("17 (sh) Z 1 17 17"), Some(('Z', 17)));
        assert_eq!(state_and_group("garbage"), None);
        assert_eq!(state_and_group("1 (x) R 0 notanumber"), None);
    }
}
