//! Bandwidth limits: token buckets for uploads and downloads, server-wide, per user and per
//! session.
//!
//! The configuration's `[bandwidth]` ([`ServerBandwidth`]) caps the whole server and gives
//! every session a default rate; a user's `[users.NAME.bandwidth]` ([`UserBandwidth`])
//! caps all that user's sessions together and may set other per-session rates. A transfer
//! is charged to every bucket that applies ([`Bandwidth::throttle`]): its session's, its
//! user's (shared by the user's sessions, keyed like the session limits by virtual host and
//! name, [`UserKey`]) and the server's. Rates are read at the start of each transfer, so a
//! reloaded users file applies to the transfers that start after it.
//!
//! The buckets themselves are in `bucket`, the rate syntax (`"10M"`) in `rate`.

mod bucket;
mod rate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde::{Deserialize, Serialize};

use crate::limits::UserKey;
pub use bucket::{Bucket, Throttle, BURST};
pub use rate::Rate;

/// Upload and download rates for a scope and for each session in it: the server's
/// `[bandwidth]` (all sessions together; each session's default) and a user's
/// `[users.NAME.bandwidth]` (the user's sessions together; each of them, instead of the
/// server's default). Unset (or 0): no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// All uploads of the scope together.
    #[serde(
        default,
        deserialize_with = "Rate::deserialize_optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub upload: Option<Rate>,
    /// All downloads (and listings) of the scope together.
    #[serde(
        default,
        deserialize_with = "Rate::deserialize_optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub download: Option<Rate>,
    /// Each session's uploads.
    #[serde(
        default,
        deserialize_with = "Rate::deserialize_optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub session_upload: Option<Rate>,
    /// Each session's downloads.
    #[serde(
        default,
        deserialize_with = "Rate::deserialize_optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub session_download: Option<Rate>,
}

/// The server's bandwidth limits (`[bandwidth]` of the configuration).
pub type ServerBandwidth = Rates;

/// A user's bandwidth limits (`[users.NAME.bandwidth]` of the users file); unset: the
/// server's.
pub type UserBandwidth = Rates;

impl Rates {
    /// Whether nothing is set (the users file then leaves the table out).
    pub fn is_empty(&self) -> bool {
        *self == Rates::default()
    }
}

/// Which way a transfer moves bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `STOR`, `APPE`, `STOU`.
    Upload,
    /// `RETR` and the listings.
    Download,
}

/// The server's buckets, and its users' while they have a session that transfers.
pub struct Bandwidth {
    server: ServerBandwidth,
    upload: Option<Arc<Bucket>>,
    download: Option<Arc<Bucket>>,
    /// Users' buckets, held by their sessions ([`SessionBandwidth`]): one goes away with
    /// the last session of its user.
    users: Mutex<UserBuckets>,
}

#[derive(Default)]
struct UserBuckets {
    by_user: HashMap<(UserKey, Direction), Weak<Bucket>>,
    /// Size at which buckets whose sessions are gone are dropped from the map.
    prune_at: usize,
}

/// Entries kept before the first pruning of the users' buckets.
const PRUNE_FLOOR: usize = 64;

impl Bandwidth {
    /// The buckets for `server`'s limits.
    pub fn new(server: &ServerBandwidth) -> Bandwidth {
        let bucket = |rate: Option<Rate>| rate.map(|r| Arc::new(Bucket::new(r)));
        Bandwidth {
            server: server.clone(),
            upload: bucket(server.upload),
            download: bucket(server.download),
            users: Mutex::new(UserBuckets {
                by_user: HashMap::new(),
                prune_at: PRUNE_FLOOR,
            }),
        }
    }

    /// What a transfer of `direction` by the user `name` on virtual host `host`, whose
    /// limits are `user`, is charged to; `None` when no limit applies. Called once per
    /// transfer: with no limit set it takes no lock and allocates nothing.
    pub fn throttle(
        &self,
        direction: Direction,
        host: Option<&str>,
        name: &str,
        user: &UserBandwidth,
        session: &SessionBandwidth,
    ) -> Option<Throttle> {
        let (session_rate, user_rate, server_bucket) = match direction {
            Direction::Upload => (
                user.session_upload.or(self.server.session_upload),
                user.upload,
                &self.upload,
            ),
            Direction::Download => (
                user.session_download.or(self.server.session_download),
                user.download,
                &self.download,
            ),
        };
        if session_rate.is_none() && user_rate.is_none() && server_bucket.is_none() {
            return None;
        }
        let mut buckets = Vec::with_capacity(3);
        let mut held = session.held();
        let slot = held.get_mut(direction);
        match session_rate {
            Some(rate) => buckets.push(slot.own(rate)),
            None => slot.session = None,
        }
        match user_rate {
            Some(rate) => {
                let bucket = self.user_bucket(UserKey::new(host, name), direction, rate);
                slot.user = Some(bucket.clone());
                buckets.push(bucket);
            }
            None => slot.user = None,
        }
        drop(held);
        buckets.extend(server_bucket.iter().cloned());
        Throttle::new(buckets)
    }

    /// The bucket of `key`'s transfers in `direction`, at `rate` from now on.
    fn user_bucket(&self, key: UserKey, direction: Direction, rate: Rate) -> Arc<Bucket> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let users = &mut *users;
        let entry = (key, direction);
        if let Some(bucket) = users.by_user.get(&entry).and_then(Weak::upgrade) {
            bucket.set_rate(rate);
            return bucket;
        }
        if users.by_user.len() >= users.prune_at {
            users.by_user.retain(|_, bucket| bucket.strong_count() > 0);
            users.prune_at = (2 * users.by_user.len()).max(PRUNE_FLOOR);
        }
        let bucket = Arc::new(Bucket::new(rate));
        users.by_user.insert(entry, Arc::downgrade(&bucket));
        bucket
    }

    /// Users with a bucket in the map, live or not yet pruned (for tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.users.lock().map(|u| u.by_user.len()).unwrap_or(0)
    }
}

/// One logged-in session's buckets: its own (so that the per-session rate holds across
/// its transfers, however small), and its user's (so that the user's bucket lives while
/// the user has a session, between transfers too). Empty until a limited transfer.
#[derive(Default)]
pub struct SessionBandwidth {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    upload: Slot,
    download: Slot,
}

#[derive(Default)]
struct Slot {
    session: Option<Arc<Bucket>>,
    user: Option<Arc<Bucket>>,
}

impl Held {
    fn get_mut(&mut self, direction: Direction) -> &mut Slot {
        match direction {
            Direction::Upload => &mut self.upload,
            Direction::Download => &mut self.download,
        }
    }
}

impl Slot {
    /// The session's own bucket, at `rate` from now on.
    fn own(&mut self, rate: Rate) -> Arc<Bucket> {
        match &self.session {
            Some(bucket) => {
                bucket.set_rate(rate);
                bucket.clone()
            }
            None => self.session.insert(Arc::new(Bucket::new(rate))).clone(),
        }
    }
}

impl SessionBandwidth {
    fn held(&self) -> MutexGuard<'_, Held> {
        // Only handles to buckets: consistent after any panic.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn rate(bytes: u64) -> Option<Rate> {
        Rate::new(bytes)
    }

    #[test]
    fn nothing_set_is_no_throttle() {
        let bw = Bandwidth::new(&ServerBandwidth::default());
        let session = SessionBandwidth::default();
        for direction in [Direction::Upload, Direction::Download] {
            let t = bw.throttle(direction, None, "u", &UserBandwidth::default(), &session);
            assert!(t.is_none());
        }
        // Zero in the files is the same as nothing.
        let server: ServerBandwidth =
            toml::from_str("upload = 0\ndownload = \"0\"\nsession_upload = \"0M\"").unwrap();
        assert_eq!(server, ServerBandwidth::default());
        let bw = Bandwidth::new(&server);
        assert!(bw
            .throttle(
                Direction::Upload,
                None,
                "u",
                &UserBandwidth::default(),
                &session
            )
            .is_none());
        assert_eq!(bw.tracked(), 0);
    }

    #[test]
    fn each_applicable_bucket_is_charged() {
        let server = ServerBandwidth {
            download: rate(100 * MIB),
            session_download: rate(10 * MIB),
            ..Default::default()
        };
        let bw = Bandwidth::new(&server);
        let session = SessionBandwidth::default();
        let user = UserBandwidth {
            download: rate(20 * MIB),
            ..Default::default()
        };
        let t = bw
            .throttle(Direction::Download, None, "u", &user, &session)
            .unwrap();
        assert_eq!(t.step(), (10 * MIB / 100) as usize);
        let mut waits = 0;
        // 30 MiB: the session's bucket (10 MiB/s) waits ~3 s, then the user's (20 MiB/s)
        // ~1.5 s, the server's (100 MiB/s) ~0.3 s.
        assert!(t.charge(30 * MIB as usize, |_| {
            waits += 1;
            true
        }));
        assert_eq!(waits, 3);
        // Uploads are not limited here.
        assert!(bw
            .throttle(Direction::Upload, None, "u", &user, &session)
            .is_none());
    }

    #[test]
    fn a_users_own_session_rate_overrides_the_servers() {
        let server = ServerBandwidth {
            session_upload: rate(MIB),
            ..Default::default()
        };
        let bw = Bandwidth::new(&server);
        let session = SessionBandwidth::default();
        let user = UserBandwidth {
            session_upload: rate(64 * MIB),
            ..Default::default()
        };
        let t = bw
            .throttle(Direction::Upload, None, "u", &user, &session)
            .unwrap();
        assert_eq!(t.step(), (64 * MIB / 100) as usize);
        let t = bw
            .throttle(
                Direction::Upload,
                None,
                "v",
                &UserBandwidth::default(),
                &session,
            )
            .unwrap();
        assert_eq!(t.step(), (MIB / 100) as usize);
    }

    #[test]
    fn a_users_sessions_share_one_bucket_per_host_and_direction() {
        let bw = Bandwidth::new(&ServerBandwidth::default());
        let user = UserBandwidth {
            download: rate(MIB),
            upload: rate(MIB),
            ..Default::default()
        };
        let (a, b, c) = (
            SessionBandwidth::default(),
            SessionBandwidth::default(),
            SessionBandwidth::default(),
        );
        let first = bw
            .throttle(Direction::Download, None, "u", &user, &a)
            .unwrap();
        let second = bw
            .throttle(Direction::Download, None, "u", &user, &b)
            .unwrap();
        assert!(Arc::ptr_eq(&first.buckets()[0], &second.buckets()[0]));
        let other_host = bw
            .throttle(Direction::Download, Some("b.example"), "u", &user, &c)
            .unwrap();
        assert!(!Arc::ptr_eq(&first.buckets()[0], &other_host.buckets()[0]));
        let upload = bw
            .throttle(Direction::Upload, None, "u", &user, &a)
            .unwrap();
        assert!(!Arc::ptr_eq(&first.buckets()[0], &upload.buckets()[0]));
        // The bucket outlives the transfer while a session of the user holds it...
        drop((first, second));
        let again = bw
            .throttle(Direction::Download, None, "u", &user, &c)
            .unwrap();
        let held_by_c = again.buckets()[0].clone();
        let from_a = bw
            .throttle(Direction::Download, None, "u", &user, &a)
            .unwrap();
        assert!(Arc::ptr_eq(&held_by_c, &from_a.buckets()[0]));
        // ... and a reloaded rate applies to it.
        let faster = UserBandwidth {
            download: rate(8 * MIB),
            ..user.clone()
        };
        bw.throttle(Direction::Download, None, "u", &faster, &b);
        assert_eq!(held_by_c.rate(), rate(8 * MIB).unwrap());
    }

    #[test]
    fn buckets_of_users_without_sessions_are_pruned() {
        let bw = Bandwidth::new(&ServerBandwidth::default());
        let user = UserBandwidth {
            download: rate(MIB),
            ..Default::default()
        };
        let keep = SessionBandwidth::default();
        let _kept = bw.throttle(Direction::Download, None, "kept", &user, &keep);
        for i in 0..10 * PRUNE_FLOOR {
            let session = SessionBandwidth::default();
            bw.throttle(Direction::Download, None, &format!("u{i}"), &user, &session);
        }
        assert!(bw.tracked() <= 2 * PRUNE_FLOOR, "{}", bw.tracked());
        // The live one is still shared.
        let other = SessionBandwidth::default();
        let t = bw
            .throttle(Direction::Download, None, "kept", &user, &other)
            .unwrap();
        let t0 = bw
            .throttle(Direction::Download, None, "kept", &user, &keep)
            .unwrap();
        assert!(Arc::ptr_eq(&t.buckets()[0], &t0.buckets()[0]));
    }

    #[test]
    fn the_example_configuration_shows_the_defaults() {
        let text = include_str!("../../../docs/ftpsd.example.toml");
        let config = crate::config::Config::parse(text).unwrap();
        assert_eq!(config.bandwidth, ServerBandwidth::default());
        assert!(text.contains("[bandwidth]\n"));
        for key in ["upload", "download", "session_upload", "session_download"] {
            assert!(text.contains(&format!("\n{key} = 0\n")), "{key}");
        }
    }

    #[test]
    fn config_and_users_file_keys() {
        let user: UserBandwidth = toml::from_str(
            "upload = \"1M\"\ndownload = 2048\nsession_upload = \"512K\"\nsession_download = \"1G\"",
        )
        .unwrap();
        assert_eq!(user.upload, rate(MIB));
        assert_eq!(user.download, rate(2048));
        assert_eq!(user.session_upload, rate(512 * 1024));
        assert_eq!(user.session_download, rate(1024 * MIB));
        let text = toml::to_string(&user).unwrap();
        assert!(text.contains("upload = \"1M\""), "{text}");
        assert_eq!(toml::from_str::<UserBandwidth>(&text).unwrap(), user);
        let err = toml::from_str::<UserBandwidth>("uplaod = \"1M\"").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let err = toml::from_str::<ServerBandwidth>("download = \"1.5M\"").unwrap_err();
        assert!(err.to_string().contains("K = 1024"), "{err}");
    }
}
