//! Virtual folders (`[users.NAME.folders."/PATH"]`): a folder mounted into two users' trees
//! is shared, each mount has its own rights (a user's own rule deeper down decides there),
//! no path leaves a folder, mount points and their made-up parents stay where they are,
//! nothing is renamed between storages, and `ftpsd user set --folder ...` mounts and
//! unmounts them for the next login; through curl and Python's ftplib, on the backend of
//! the run (a folder is a directory, or a key prefix of the server's S3 store).

mod support;

use std::fs;
use std::process::{Command, Output};
use std::time::Duration;

use ftps_testkit::storage::{Backend, UserFiles};
use support::{assert_curl_refused, ftpsd, listed, local_file, Run, Server};

const TIMEOUT: Duration = Duration::from_secs(120);
const ALICE: &str = "alice-pass-1";
const BOB: &str = "bob-pass-1";
const DENIED: &str = "550 Permission denied.";
const CROSSES: &str = "550 Cannot rename between folders of different storage; copy instead.";

// ---- Clients and fixtures ---------------------------------------------------------------

/// A folder's files, and the `path` the users file gives it: the directory `name` of the
/// server's state directory (made here), or the key prefix `name` of the server's S3 store.
fn folder(server: &Server, name: &str) -> (String, UserFiles) {
    let files = server.user_files(name);
    match &files {
        UserFiles::Local(dir) => {
            fs::create_dir_all(dir).expect("create the folder's directory");
            (dir.display().to_string(), files)
        }
        UserFiles::S3 { .. } => (name.to_string(), files),
    }
}

/// A local directory for a folder with `storage = "local"`, whatever the run's backend.
fn local_folder(server: &Server, name: &str) -> (String, UserFiles) {
    let dir = server.scratch(name);
    (dir.display().to_string(), UserFiles::Local(dir))
}

/// `ftpsd user ARGS... --state-dir DIR` (and the configuration, so that the default store
/// is known, when the users' files are in S3).
fn ftpsd_user(server: &Server, args: &[&str]) -> Output {
    let state = server.state_dir.display().to_string();
    let config = server.config.as_ref().map(|c| c.display().to_string());
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    all.extend(["--state-dir", &state]);
    if let (true, Some(config)) = (Backend::is_s3(), &config) {
        all.extend(["--config", config.as_str()]);
    }
    server.ftpsd(&all, "")
}

/// `ftpsd user set NAME ARGS...`, which must succeed.
fn user_set(server: &Server, name: &str, args: &[&str]) {
    let mut all = vec!["set", name];
    all.extend_from_slice(args);
    let out = ftpsd_user(server, &all);
    assert!(
        out.status.success(),
        "ftpsd user {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ftpsd user show NAME`.
fn user_show(server: &Server, name: &str) -> String {
    let out = ftpsd_user(server, &["show", name]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// `login_steps.py STEPS...` logged in as `user`: one line per step, after a login that
/// must succeed.
fn steps(server: &Server, user: &str, password: &str, steps: &[&str]) -> Vec<String> {
    let run = support::login_steps(server, user, password, false, steps);
    run.assert_ok("ftplib steps");
    let mut lines = run.stdout.lines().map(str::to_string);
    let login = lines.next().unwrap_or_default();
    assert!(login.starts_with("login -> 230 "), "{user}: {run}");
    lines.collect()
}

/// Asserts that ftplib's steps got exactly `expected` (`"<step> -> <outcome>"` each).
fn assert_steps(server: &Server, user: &str, password: &str, expected: &[(&str, &str)]) {
    let names: Vec<&str> = expected.iter().map(|(step, _)| *step).collect();
    let got = steps(server, user, password, &names);
    let wanted: Vec<String> = expected
        .iter()
        .map(|(step, outcome)| format!("{step} -> {outcome}"))
        .collect();
    assert_eq!(got, wanted, "ftplib steps of {user}");
}

/// curl over explicit FTPS as `user`, `--verbose` so that the server's replies are in its
/// stderr; `path` is the URL's path.
fn curl(server: &Server, user: &str, password: &str, path: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--verbose", "--disable"])
        .args(["--ssl-reqd", "--max-time", "60"])
        .arg("--cacert")
        .arg(server.state_dir.join("cert.pem"))
        .arg("--user")
        .arg(format!("{user}:{password}"))
        .args(args)
        .arg(format!("ftp://127.0.0.1:{}{path}", server.explicit.port()));
    support::run_client(&mut cmd, TIMEOUT)
}

/// A server with `alice` (own file `own.txt`) and `bob` (own file `bob.txt`), both
/// read-write, and the folder `folders/shared` (returned) mounted at `/shared` for both,
/// with `bob_flags` added to bob's mount (e.g. `--folder-access`).
fn two_users_sharing(bob_flags: &[&str]) -> (Server, UserFiles, UserFiles, UserFiles) {
    let server = ftpsd().start();
    let alice = server.add_user("alice", ALICE, &[]);
    alice.put("own.txt", b"alice's own");
    let bob = server.add_user("bob", BOB, &[]);
    bob.put("bob.txt", b"bob's own");
    let (path, shared) = folder(&server, "folders/shared");
    let mount = format!("/shared={path}");
    user_set(&server, "alice", &["--folder", &mount]);
    let mut flags = vec!["--folder", mount.as_str()];
    flags.extend_from_slice(bob_flags);
    user_set(&server, "bob", &flags);
    (server, alice, bob, shared)
}

// ---- Sharing ----------------------------------------------------------------------------

#[test]
fn a_folder_mounted_for_two_users_is_shared_curl() {
    let (server, alice, bob, shared) = two_users_sharing(&[]);
    let content = support::content(1, 200_000);
    let upload = local_file(&server, "x", &content);

    curl(
        &server,
        "alice",
        ALICE,
        "/shared/x",
        &["--upload-file", &upload],
    )
    .assert_ok("alice uploads /shared/x");
    assert_eq!(shared.read("x"), content, "the folder's copy");
    assert!(
        !alice.exists("shared"),
        "the upload went to alice's own tree"
    );

    // bob sees it, by LIST and NLST, and downloads the same bytes.
    let run = curl(&server, "bob", BOB, "/shared/", &[]);
    run.assert_ok("bob lists /shared");
    assert_eq!(listed(&run.stdout), ["x"], "{run}");
    let run = curl(&server, "bob", BOB, "/shared/", &["--list-only"]);
    run.assert_ok("bob NLST /shared");
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), ["x"], "{run}");
    let out = server.scratch("download").join("x");
    let out_arg = out.display().to_string();
    curl(&server, "bob", BOB, "/shared/x", &["--output", &out_arg])
        .assert_ok("bob downloads /shared/x");
    assert_eq!(fs::read(&out).expect("downloaded file"), content);

    // Each sees the folder in the root, next to the own files only.
    let run = curl(&server, "alice", ALICE, "/", &[]);
    run.assert_ok("alice lists /");
    assert_eq!(listed(&run.stdout), ["own.txt", "shared/"], "{run}");
    let run = curl(&server, "bob", BOB, "/", &[]);
    run.assert_ok("bob lists /");
    assert_eq!(listed(&run.stdout), ["bob.txt", "shared/"], "{run}");
    assert_eq!(bob.names(""), ["bob.txt"]);
}

#[test]
fn a_folder_mounted_for_two_users_is_shared_ftplib() {
    let (server, alice, _bob, shared) = two_users_sharing(&[]);
    assert_steps(
        &server,
        "bob",
        BOB,
        &[
            ("stor:/shared/from-bob.txt:hello from bob", "OK"),
            ("list:/", "OK bob.txt,shared/"),
        ],
    );
    assert_eq!(shared.read("from-bob.txt"), b"hello from bob");
    assert_steps(
        &server,
        "alice",
        ALICE,
        &[
            ("list:/", "OK own.txt,shared/"),
            ("list:/shared", "OK from-bob.txt"),
            ("nlst:/shared", "OK /shared/from-bob.txt"),
            ("retr:/shared/from-bob.txt", "OK hello from bob"),
            ("cwd:/shared", "OK"),
            ("stor:reply.txt:hello from alice", "OK"),
        ],
    );
    assert_steps(
        &server,
        "bob",
        BOB,
        &[("retr:/shared/reply.txt", "OK hello from alice")],
    );
    assert_eq!(shared.names(""), ["from-bob.txt", "reply.txt"]);
    assert_eq!(alice.names(""), ["own.txt"]);
}

// ---- Rights per folder ------------------------------------------------------------------

#[test]
fn each_mount_has_its_own_rights_and_a_deeper_rule_decides_below_it() {
    let (server, _alice, bob, shared) =
        two_users_sharing(&["--folder-access", "/shared=read-only"]);
    shared.put("x", b"original");
    shared.mkdir("drop");

    // bob's mount is read-only: every change in it is refused; his own tree is not.
    assert_steps(
        &server,
        "bob",
        BOB,
        &[
            ("retr:/shared/x", "OK original"),
            ("list:/shared", "OK drop/,x"),
            ("stor:/shared/new.txt:from bob", DENIED),
            ("stor:/shared/x:changed", DENIED),
            ("dele:/shared/x", DENIED),
            ("mkd:/shared/d", DENIED),
            ("rmd:/shared/drop", DENIED),
            ("rename:/shared/x:/shared/y", DENIED),
            ("quote:SITE CHMOD 600 /shared/x", DENIED),
            ("stor:/mine.txt:bob's", "OK"),
        ],
    );
    let upload = local_file(&server, "curl.txt", b"from curl");
    let run = curl(
        &server,
        "bob",
        BOB,
        "/shared/curl.txt",
        &["--upload-file", &upload],
    );
    assert_curl_refused(&run, DENIED, "bob's curl upload into his read-only mount");
    assert_eq!(shared.names(""), ["drop", "x"]);
    assert_eq!(shared.read("x"), b"original");
    assert_eq!(bob.read("mine.txt"), b"bob's");

    // alice's mount of the same folder has her own access: read-write.
    assert_steps(
        &server,
        "alice",
        ALICE,
        &[
            ("stor:/shared/new.txt:from alice", "OK"),
            ("mkd:/shared/d", "OK"),
            ("rename:/shared/new.txt:/shared/d/moved.txt", "OK"),
            ("stor:/shared/x:changed by alice", "OK"),
        ],
    );
    assert_eq!(shared.read("d/moved.txt"), b"from alice");
    assert_eq!(shared.read("x"), b"changed by alice");
    let run = curl(
        &server,
        "alice",
        ALICE,
        "/shared/curl.txt",
        &["--upload-file", &upload],
    );
    run.assert_ok("alice's curl upload");
    assert_eq!(shared.read("curl.txt"), b"from curl");

    // A rule of bob's own below the mount point decides there, and only there.
    user_set(&server, "bob", &["--permission", "/shared/drop=upload"]);
    assert_steps(
        &server,
        "bob",
        BOB,
        &[
            ("stor:/shared/drop/in.txt:dropped", "OK"),
            ("stor:/shared/drop/in.txt:again", DENIED),
            ("retr:/shared/drop/in.txt", DENIED),
            ("list:/shared/drop", DENIED),
            ("mkd:/shared/drop/sub", DENIED),
            ("stor:/shared/out.txt:outside the drop", DENIED),
            ("retr:/shared/x", "OK changed by alice"),
        ],
    );
    assert_eq!(shared.read("drop/in.txt"), b"dropped");
    assert!(!shared.exists("out.txt"));

    // The other way round: a read-only user writes in a read-write mount, nowhere else.
    let carol = server.add_user("carol", "carol-pass-1", &["--read-only"]);
    let (path, _) = folder(&server, "folders/shared");
    user_set(
        &server,
        "carol",
        &[
            "--folder",
            &format!("/shared={path}"),
            "--folder-access",
            "/shared=read-write",
        ],
    );
    assert_steps(
        &server,
        "carol",
        "carol-pass-1",
        &[
            ("stor:/shared/carol.txt:from carol", "OK"),
            ("stor:/carol.txt:in her root", DENIED),
            ("mkd:/d", DENIED),
        ],
    );
    assert_eq!(shared.read("carol.txt"), b"from carol");
    assert!(carol.names("").is_empty());
}

// ---- Confinement ------------------------------------------------------------------------

#[test]
fn dot_dot_never_leaves_a_folder() {
    let (server, alice, _bob, shared) = two_users_sharing(&[]);
    // Beside the folder, in its parent: what ".." must never reach.
    let parent = server.user_files("folders");
    parent.put("secret.txt", b"outside the folder");
    shared.mkdir("inner");
    shared.put("inner/deep.txt", b"deep");
    assert_steps(
        &server,
        "alice",
        ALICE,
        &[
            ("cwd:/shared", "OK"),
            ("pwd", "OK /shared"),
            ("cwd:..", "OK"),
            ("pwd", "OK /"),
            ("list:", "OK own.txt,shared/"),
            ("cwd:/shared/inner", "OK"),
            ("cwd:../../..", "OK"),
            ("pwd", "OK /"),
            ("list:/shared/..", "OK own.txt,shared/"),
            (
                "retr:/shared/../secret.txt",
                "550 No such file or directory.",
            ),
            (
                "retr:/shared/../../secret.txt",
                "550 No such file or directory.",
            ),
            ("retr:/shared/../own.txt", "OK alice's own"),
            ("retr:/shared/inner/../../own.txt", "OK alice's own"),
            ("retr:/shared/../shared/inner/deep.txt", "OK deep"),
            ("stor:/shared/../../escaped.txt:x", "OK"),
        ],
    );
    // The upload through ".." landed in alice's own root, not beside the folder.
    assert_eq!(alice.read("escaped.txt"), b"x");
    assert!(!parent.exists("escaped.txt"));
    assert_eq!(
        server.user_files("folders").names(""),
        ["secret.txt", "shared"]
    );

    // curl, sending the dots as they are: one CWD per segment, then RETR.
    let run = curl(
        &server,
        "bob",
        BOB,
        "/shared/../../secret.txt",
        &["--path-as-is"],
    );
    assert_curl_refused(
        &run,
        "550 No such file or directory.",
        "RETR beside the folder",
    );
    assert!(run.stdout.is_empty(), "{run}");
    let run = curl(&server, "bob", BOB, "/shared/../bob.txt", &["--path-as-is"]);
    run.assert_ok("curl /shared/../bob.txt");
    assert_eq!(run.stdout, "bob's own");
}

#[test]
fn a_symlink_in_a_folder_pointing_outside_it_is_not_followed() {
    let (server, _alice, _bob, shared) = two_users_sharing(&[]);
    let dir = shared.local_path().to_path_buf();
    let parent = dir.parent().expect("the folder's parent").to_path_buf();
    fs::write(parent.join("secret.txt"), b"outside the folder").unwrap();
    std::os::unix::fs::symlink(&parent, dir.join("escape")).unwrap();
    std::os::unix::fs::symlink(server.state_dir.join("key.pem"), dir.join("key-link")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", dir.join("relative-link")).unwrap();

    let key = fs::read(server.state_dir.join("key.pem")).unwrap();

    let run = curl(&server, "bob", BOB, "/shared/key-link", &[]);
    assert_curl_refused(&run, "550 ", "curl RETR of a link to the server's key");
    assert!(run.stdout.is_empty(), "{run}");
    let run = curl(&server, "bob", BOB, "/shared/escape/secret.txt", &[]);
    assert!(!run.status.success(), "{run}");
    assert!(run.stdout.is_empty(), "{run}");
    assert_steps(
        &server,
        "alice",
        ALICE,
        &[
            ("retr:/shared/escape/secret.txt", DENIED),
            ("retr:/shared/key-link", DENIED),
            ("retr:/shared/relative-link", DENIED),
            ("cwd:/shared/escape", "550 Not a directory."),
            // The link itself is listed, not what it points to.
            ("list:/shared/escape", "OK escape"),
            ("stor:/shared/escape/evil.txt:evil", DENIED),
            ("mkd:/shared/escape/evil-dir", DENIED),
            // A new file replaces the link; the key it pointed to is untouched.
            ("stor:/shared/key-link:overwritten", "OK"),
        ],
    );
    // Nothing outside the folder was read into it or written.
    assert_eq!(shared.read("key-link"), b"overwritten");
    assert_eq!(fs::read(server.state_dir.join("key.pem")).unwrap(), key);
    assert_eq!(
        UserFiles::Local(parent.clone()).names(""),
        ["secret.txt", "shared"]
    );
    assert_eq!(
        fs::read(parent.join("secret.txt")).unwrap(),
        b"outside the folder"
    );
}

// ---- Fixed mount points ---------------------------------------------------------------------

#[test]
fn mount_points_stay_and_nothing_is_renamed_between_storages() {
    let (server, alice, _bob, shared) = two_users_sharing(&[]);
    shared.put("x", b"in the folder");
    // A second folder on another storage: this machine's disk, whatever the default.
    let (path, disk) = local_folder(&server, "disk");
    user_set(
        &server,
        "alice",
        &[
            "--folder",
            &format!("/disk={path}"),
            "--folder-storage",
            "/disk=local",
        ],
    );
    assert_steps(
        &server,
        "alice",
        ALICE,
        &[
            ("list:/", "OK disk/,own.txt,shared/"),
            ("rmd:/shared", DENIED),
            ("rename:/shared:/moved", DENIED),
            ("rename:/own.txt:/shared", DENIED),
            ("stor:/shared:over the mount", "550 Is a directory."),
            ("dele:/shared", "550 Is a directory; use RMD."),
            ("mkd:/shared", "550 File exists."),
            ("quote:SITE CHMOD 700 /shared", DENIED),
            ("rename:/own.txt:/shared/own.txt", CROSSES),
            ("rename:/shared/x:/x", CROSSES),
            ("rename:/shared/x:/disk/x", CROSSES),
            ("stor:/disk/d.txt:on disk", "OK"),
            ("rename:/disk/d.txt:/shared/d.txt", CROSSES),
            // Within one folder a rename is as usual.
            ("rename:/shared/x:/shared/y", "OK"),
            ("list:/", "OK disk/,own.txt,shared/"),
        ],
    );
    assert_eq!(alice.names(""), ["own.txt"]);
    assert_eq!(alice.read("own.txt"), b"alice's own");
    assert_eq!(shared.names(""), ["y"]);
    assert_eq!(shared.read("y"), b"in the folder");
    assert_eq!(disk.names(""), ["d.txt"]);

    // curl: RMD of the mount point, and a rename into the other storage, by --quote.
    let run = curl(&server, "alice", ALICE, "/", &["--quote", "RMD /shared"]);
    assert_curl_refused(&run, DENIED, "curl RMD /shared");
    let run = curl(
        &server,
        "alice",
        ALICE,
        "/",
        &["--quote", "RNFR /own.txt", "--quote", "RNTO /disk/own.txt"],
    );
    assert_curl_refused(&run, CROSSES, "curl rename into /disk");
    let upload = local_file(&server, "shared", b"over the mount");
    let run = curl(
        &server,
        "alice",
        ALICE,
        "/shared",
        &["--upload-file", &upload],
    );
    assert_curl_refused(&run, "550 Is a directory.", "curl STOR /shared");
    assert_eq!(alice.names(""), ["own.txt"]);
    assert_eq!(disk.names(""), ["d.txt"]);
    assert!(shared.is_dir(""), "the folder is still there");
    assert_eq!(shared.names(""), ["y"]);
}

#[test]
fn a_deep_mount_shows_its_made_up_parents() {
    let server = ftpsd().start();
    let alice = server.add_user("alice", ALICE, &[]);
    alice.mkdir("projects");
    alice.put("projects/notes.txt", b"alice's notes");
    let bob = server.add_user("bob", BOB, &[]);
    bob.put("bob.txt", b"bob's own");
    let (path, docs) = folder(&server, "docs");
    docs.put("readme.txt", b"read me");
    let mount = format!("/projects/2026/docs={path}");
    user_set(&server, "alice", &["--folder", &mount]);
    user_set(&server, "bob", &["--folder", &mount]);

    // bob has no /projects: it and /projects/2026 exist only as the mount's parents.
    assert_steps(
        &server,
        "bob",
        BOB,
        &[
            ("list:/", "OK bob.txt,projects/"),
            ("cwd:/projects", "OK"),
            ("pwd", "OK /projects"),
            ("list:", "OK 2026/"),
            ("nlst:", "OK 2026"),
            ("cwd:2026", "OK"),
            ("list:", "OK docs/"),
            ("retr:docs/readme.txt", "OK read me"),
            ("cwd:docs", "OK"),
            ("pwd", "OK /projects/2026/docs"),
            ("list:", "OK readme.txt"),
            ("rmd:/projects", DENIED),
            ("rmd:/projects/2026", DENIED),
            ("rename:/projects:/elsewhere", DENIED),
            ("stor:/projects/2026:x", "550 Is a directory."),
        ],
    );
    assert!(!bob.exists("projects"), "made-up parents were created");
    // alice's real /projects shows her file and the mount's parent.
    assert_steps(
        &server,
        "alice",
        ALICE,
        &[
            ("list:/projects", "OK 2026/,notes.txt"),
            ("retr:/projects/notes.txt", "OK alice's notes"),
            ("retr:/projects/2026/docs/readme.txt", "OK read me"),
        ],
    );

    let run = curl(&server, "bob", BOB, "/projects/", &[]);
    run.assert_ok("curl LIST /projects/");
    assert_eq!(listed(&run.stdout), ["2026/"], "{run}");
    let run = curl(&server, "bob", BOB, "/projects/2026/", &[]);
    run.assert_ok("curl LIST /projects/2026/");
    assert_eq!(listed(&run.stdout), ["docs/"], "{run}");
    let run = curl(&server, "bob", BOB, "/projects/2026/docs/readme.txt", &[]);
    run.assert_ok("curl RETR through the made-up parents");
    assert_eq!(run.stdout, "read me");
}

// ---- The command line -------------------------------------------------------------------

#[test]
fn user_set_mounts_a_folder_for_the_next_login_and_removes_it() {
    let server = ftpsd().start();
    let alice = server.add_user("alice", ALICE, &[]);
    alice.put("own.txt", b"alice's own");
    let (path, shared) = folder(&server, "folders/shared");
    shared.put("x", b"shared x");
    let (disk_path, disk) = local_folder(&server, "disk");
    assert_steps(
        &server,
        "alice",
        ALICE,
        &[
            ("list:/", "OK own.txt"),
            ("cwd:/shared", "550 No such file or directory."),
        ],
    );

    user_set(
        &server,
        "alice",
        &[
            "--folder",
            &format!("/shared={path}"),
            "--folder-access",
            "/shared=read-only",
            "--folder",
            &format!("/disk/={disk_path}"),
            "--folder-storage",
            "/disk=local",
        ],
    );
    let shown = user_show(&server, "alice");
    for line in [
        "[users.alice.folders.\"/shared\"]".to_string(),
        format!("path = \"{path}\""),
        "access = \"read-only\"".to_string(),
        "[users.alice.folders.\"/disk\"]".to_string(),
        format!("path = \"{disk_path}\""),
        "storage = \"local\"".to_string(),
    ] {
        assert!(shown.lines().any(|l| l == line), "no {line:?} in:\n{shown}");
    }
    assert_steps(
        &server,
        "alice",
        ALICE,
        &[
            ("list:/", "OK disk/,own.txt,shared/"),
            ("retr:/shared/x", "OK shared x"),
            ("stor:/shared/y:refused", DENIED),
            ("stor:/disk/d.txt:on this machine", "OK"),
        ],
    );
    assert_eq!(shared.names(""), ["x"]);
    assert_eq!(disk.read("d.txt"), b"on this machine");
    let run = curl(&server, "alice", ALICE, "/shared/x", &[]);
    run.assert_ok("curl RETR /shared/x");
    assert_eq!(run.stdout, "shared x");

    // Bad flags are refused, saying why, and leave the file as it was.
    let users = fs::read_to_string(server.state_dir.join("users.toml")).unwrap();
    for (args, message) in [
        (
            vec!["--remove-folder", "/nope"],
            "no folder is mounted there",
        ),
        (
            vec!["--folder-access", "/nope=read-only"],
            "no folder is mounted at",
        ),
        (vec!["--folder", "/=somewhere"], "cannot be mounted at /"),
        (vec!["--folder", "shared=somewhere"], "must be absolute"),
        (
            vec!["--folder-access", "/shared=write"],
            "is not read-only or read-write",
        ),
    ] {
        let mut all = vec!["set", "alice"];
        all.extend_from_slice(&args);
        let out = ftpsd_user(&server, &all);
        assert!(!out.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert_eq!(
        fs::read_to_string(server.state_dir.join("users.toml")).unwrap(),
        users
    );

    // Unmounted: gone from the file and from the next login; its files are kept.
    user_set(&server, "alice", &["--remove-folder", "/shared"]);
    let shown = user_show(&server, "alice");
    assert!(!shown.contains("\"/shared\""), "{shown}");
    assert!(shown.contains("[users.alice.folders.\"/disk\"]"), "{shown}");
    assert_steps(
        &server,
        "alice",
        ALICE,
        &[
            ("list:/", "OK disk/,own.txt"),
            ("cwd:/shared", "550 No such file or directory."),
            ("retr:/shared/x", "550 No such file or directory."),
        ],
    );
    let run = curl(&server, "alice", ALICE, "/shared/x", &[]);
    assert!(!run.status.success(), "{run}");
    assert_eq!(shared.read("x"), b"shared x");
    user_set(&server, "alice", &["--remove-folder", "/disk"]);
    assert!(!user_show(&server, "alice").contains("folders"));
    assert_eq!(disk.read("d.txt"), b"on this machine");
}
