//! `strata completions SHELL` and `strata man`: shell completion scripts and
//! man pages, generated from the same clap definitions as `--help`, so they
//! can never disagree with the command.

use std::path::Path;

use clap::CommandFactory;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "strata", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page of `strata` (roff), which lists every subcommand.
pub fn man_page() -> Result<String, strata::Error> {
    render(crate::Cli::command())
}

/// Write `strata.1` and one `strata-SUBCOMMAND.1` per subcommand into `dir`
/// (created if missing); returns the file names written.
pub fn write_man_pages(dir: &Path) -> Result<Vec<String>, strata::Error> {
    let io = |path: &Path, source: std::io::Error| strata::Error::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let cmd = crate::Cli::command();
    let mut pages = vec![("strata.1".to_owned(), render(cmd.clone())?)];
    // Hidden subcommands (`__layer-job`, run by workers) have no page, as
    // they have no line in `--help`.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("strata-{}", sub.get_name());
        // The page of a subcommand is named and titled as `man` finds it.
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(name.clone());
        pages.push((format!("{name}.1"), render(page)?));
    }
    let mut written = Vec::with_capacity(pages.len());
    for (file, text) in pages {
        let path = dir.join(&file);
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        written.push(file);
    }
    Ok(written)
}

fn render(cmd: clap::Command) -> Result<String, strata::Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|source| strata::Error::Io {
            path: "the man page".into(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
