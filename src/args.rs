//! Command line: `ripvsd [-c FILE] [--check] [--socket PATH] [-- EAL ARGS...]`.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: ripvsd [-c FILE] [--check] [--socket PATH] [-- EAL-ARGS...]
  -c, --config FILE  service config (default: the embedded conf/ripvs.toml)
      --check        validate the config and exit: 0 if good, 1 with the error
      --socket PATH  control socket for ripvsadm (default /run/ripvs/ripvsd.sock)
  -h, --help         this text
  -V, --version      version
  -- EAL-ARGS        appended to the config's [eal] args (e.g. --file-prefix=x)";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub config: Option<PathBuf>,
    pub check: bool,
    pub socket: Option<PathBuf>,
    pub eal_extra: Vec<String>,
    pub help: bool,
    pub version: bool,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-c" | "--config" => {
                let f = it
                    .next()
                    .ok_or_else(|| format!("option {arg} needs a file"))?;
                if a.config.replace(PathBuf::from(f)).is_some() {
                    return Err("option -c given twice".into());
                }
            }
            "--check" => a.check = true,
            "--socket" => {
                let f = it
                    .next()
                    .ok_or_else(|| format!("option {arg} needs a path"))?;
                a.socket = Some(PathBuf::from(f));
            }
            "-h" | "--help" => a.help = true,
            "-V" | "--version" => a.version = true,
            "--" => {
                a.eal_extra = it.by_ref().collect();
            }
            _ if arg.starts_with("--config=") => {
                a.config = Some(PathBuf::from(&arg["--config=".len()..]));
            }
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Args, String> {
        parse(s.iter().map(|s| s.to_string()))
    }

    #[test]
    fn forms() {
        assert_eq!(p(&[]).unwrap(), Args::default());
        let a = p(&["-c", "x.toml", "--check", "--", "--file-prefix=t", "-c"]).unwrap();
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
        assert!(a.check);
        assert_eq!(a.eal_extra, vec!["--file-prefix=t", "-c"]);
        assert_eq!(
            p(&["--config=y.toml"]).unwrap().config,
            Some(PathBuf::from("y.toml"))
        );
        assert_eq!(p(&["-c"]).unwrap_err(), "option -c needs a file");
        assert_eq!(p(&["-x"]).unwrap_err(), "unknown argument `-x`");
        assert_eq!(
            p(&["-c", "a", "-c", "b"]).unwrap_err(),
            "option -c given twice"
        );
    }
}
