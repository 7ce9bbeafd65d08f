//! What `ftps generate` writes for packagers: manual pages (rendered by groff without a
//! warning, one per subcommand) and shell completions (loaded and run in bash).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn ftps(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(args)
        .output()
        .expect("run ftps");
    assert!(out.status.success(), "ftps {args:?}: {out:?}");
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The subcommands `ftps --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let help = text(&ftps(&["--help"]).stdout);
    help.split("Commands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Commands: in {help}"))
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// A page rendered by groff as text, long lines and no hyphenation so that names stay
/// whole; fails on any groff warning.
fn render(page: &Path) -> String {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=300n", "-rHY=0", "-P-cbou"])
        .arg(page)
        .output()
        .expect("run groff");
    assert!(out.status.success(), "groff {}: {out:?}", page.display());
    assert!(
        out.stderr.is_empty(),
        "groff warns about {}:\n{}",
        page.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn manual_pages_render_cleanly_and_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    ftps(&["generate", "man", &dir.path().display().to_string()]);
    let subs = subcommands();
    assert!(
        subs.len() >= 11 && subs.contains(&"mirror".to_string()),
        "{subs:?}"
    );
    let top = render(&dir.path().join("ftps.1"));
    assert!(
        top.contains("--pin-sha256"),
        "ftps.1 lacks the global options:\n{top}"
    );
    for sub in &subs {
        assert!(
            top.contains(&format!("ftps-{sub}(1)")),
            "ftps.1 lacks {sub}:\n{top}"
        );
        let page = render(&dir.path().join(format!("ftps-{sub}.1")));
        assert!(
            page.contains(&format!("NAME\n       ftps-{sub} ")),
            "{page}"
        );
    }
    // One page per subcommand and no more: the hidden `generate` has none.
    let written = fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(written, subs.len() + 1);
    assert!(!dir.path().join("ftps-generate.1").exists());
}

#[test]
fn bash_completion_loads_and_completes_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ftps.bash");
    fs::write(&file, ftps(&["generate", "completions", "bash"]).stdout).unwrap();
    // What bash does on TAB: the function `complete -p ftps` names, called with the
    // command, the word being completed and the one before it.
    let complete = |words: &[&str]| -> Vec<String> {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source '{}' || exit 2\n\
             spec=$(complete -p ftps) || exit 3\n\
             function=${{spec##*-F }}; function=${{function%% *}}\n\
             COMP_WORDS=({}); COMP_CWORD={}\n\
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}\n\
             \"$function\" ftps \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            file.display(),
            quoted.join(" "),
            words.len() - 1,
        );
        let out = Command::new("bash")
            .args(["--norc", "-c", &program])
            .output()
            .expect("run bash");
        assert!(out.status.success(), "bash: {out:?}");
        text(&out.stdout).lines().map(str::to_string).collect()
    };
    assert_eq!(complete(&["ftps", "mi"]), ["mirror"]);
    assert_eq!(complete(&["ftps", "mk"]), ["mkdir"]);
    assert_eq!(complete(&["ftps", "mirror", "--dry"]), ["--dry-run"]);
}
