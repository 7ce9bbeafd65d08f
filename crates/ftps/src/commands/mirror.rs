//! `ftps mirror`: a directory tree up (local -> URL) or down (URL -> local), in parallel.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use std::time::{Duration, SystemTime};

use ftps_client::mirror::{self, MirrorOptions, MirrorSettings, Rules};

use crate::args::{MirrorRuleOpts, Opts};
use crate::exit::{transfer_failed, usage};
use crate::output::Output;
use crate::session::{retry_policy, Session};
use crate::target::is_url;

/// Which way it goes depends on which of `source` and `destination` is the URL.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    opts: &Opts,
    out: &Output,
    source: String,
    destination: String,
    parallel: usize,
    delete: bool,
    dry_run: bool,
    rule_opts: &MirrorRuleOpts,
) -> anyhow::Result<()> {
    let settings = MirrorSettings {
        rules: rules_in_order(rule_opts)?,
        newer_than: rule_opts
            .newer_than
            .as_deref()
            .map(parse_when)
            .transpose()?,
        checksum: rule_opts.checksum,
        retry: retry_policy(opts),
    };
    let mopts = MirrorOptions {
        parallel: parallel.max(1),
        delete,
        dry_run,
    };
    let (url, local, upload) = match (is_url(&source), is_url(&destination)) {
        (true, false) => (source, PathBuf::from(destination), false),
        (false, true) => (destination, PathBuf::from(source), true),
        _ => return Err(usage("mirror needs one URL and one local directory")),
    };
    let mut s = Session::resolve(opts, &url)?;
    // One session first: checks the certificate and the login (asking for the
    // password if needed) before starting the parallel ones.
    let probe = s.connect().await?;
    probe.quit().await?;
    let pool = s.pool(mopts.parallel);
    let bar = out.files_spinner();
    let b2 = bar.clone();
    let bytes = Arc::new(AtomicU64::new(0));
    let bytes2 = bytes.clone();
    let progress: mirror::Progress = Arc::new(move |d: &mirror::FileDone| {
        let total = bytes2.fetch_add(d.bytes, Ordering::Relaxed) + d.bytes;
        b2.inc(1);
        b2.set_message(format!(
            "{} transferred; {}",
            indicatif::HumanBytes(total),
            d.path
        ));
    });
    let started = Instant::now();
    let remote = s.target.path.clone();
    if upload && !local.is_dir() {
        return Err(usage(format!("{} is not a directory", local.display())));
    }
    let report = if upload {
        mirror::upload_with(&pool, &local, &remote, &mopts, &settings, Some(progress)).await?
    } else {
        mirror::download_with(&pool, &remote, &local, &mopts, &settings, Some(progress)).await?
    };
    bar.finish_and_clear();
    pool.close().await;
    out.mirror(&report, upload, dry_run, started.elapsed().as_secs_f64());
    if !report.failed.is_empty() {
        return Err(transfer_failed(format!(
            "{} of {} transfers failed",
            report.failed.len(),
            report.failed.len() + report.transferred
        )));
    }
    Ok(())
}

/// The --include and --exclude rules in the order they are on the command line (clap keeps
/// each option's values apart; their indices give the order between them).
fn rules_in_order(o: &MirrorRuleOpts) -> anyhow::Result<Rules> {
    let mut all: Vec<(usize, bool, &str)> = Vec::new();
    let matches = crate::args::rule_indices();
    for (i, p) in o.include.iter().enumerate() {
        all.push((matches.include.get(i).copied().unwrap_or(i), true, p));
    }
    for (i, p) in o.exclude.iter().enumerate() {
        all.push((
            matches
                .exclude
                .get(i)
                .copied()
                .unwrap_or(usize::MAX / 2 + i),
            false,
            p,
        ));
    }
    all.sort_by_key(|(i, _, _)| *i);
    let mut rules = Rules::new();
    for (_, include, p) in all {
        let r = if include {
            rules.include(p)
        } else {
            rules.exclude(p)
        };
        r.map_err(|e| usage(e.to_string()))?;
    }
    Ok(rules)
}

/// `--newer-than`: a date or date-time (UTC), an age (`90m`, `36h`, `7d`, `2w`), or a local
/// file whose modification time is used.
fn parse_when(text: &str) -> anyhow::Result<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.into());
    }
    if let Ok(d) = time::Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc().into());
    }
    if let Some((n, unit)) = text
        .char_indices()
        .last()
        .map(|(i, u)| (&text[..i], u))
        .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    {
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => 0,
        };
        if secs > 0 {
            let age = n.parse::<u64>().ok().and_then(|n| n.checked_mul(secs));
            if let Some(t) = age.and_then(|a| SystemTime::now().checked_sub(Duration::from_secs(a)))
            {
                return Ok(t);
            }
        }
    }
    if let Ok(m) = std::fs::metadata(text) {
        if let Ok(t) = m.modified() {
            return Ok(t);
        }
    }
    Err(usage(format!(
        "--newer-than {text:?}: not a date (2024-05-01, 2024-05-01T12:00:00Z), an age (36h, 7d) or an existing file"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when() {
        let day = parse_when("2024-05-01").unwrap();
        assert_eq!(
            day.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_714_521_600
        );
        assert!(parse_when("2024-05-01T12:00:00Z").is_ok());
        let week = parse_when("7d").unwrap();
        let age = SystemTime::now().duration_since(week).unwrap().as_secs();
        assert!((7 * 86_400..7 * 86_400 + 60).contains(&age));
        assert!(parse_when("7x").is_err());
        assert!(parse_when("yesterday").is_err());
    }
}
