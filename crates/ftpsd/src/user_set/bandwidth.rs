//! `ftpsd user set` flags for `[users.NAME.bandwidth]`.

use clap::Args;
use ftps_server::bandwidth::Rate;
use ftps_server::users::UserEntry;

/// Bandwidth flags. Each takes bytes per second, with an optional K, M or G suffix
/// (K = 1024); `0` removes that limit from the user.
#[derive(Args)]
pub struct BandwidthArgs {
    /// Uploads of all the user's sessions together, bytes per second (e.g. 10M); 0: no limit.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    upload_rate: Option<RateArg>,
    /// Downloads of all the user's sessions together, bytes per second; 0: no limit.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    download_rate: Option<RateArg>,
    /// Uploads of each of the user's sessions, bytes per second; 0: the server's
    /// bandwidth.session_upload.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    session_upload_rate: Option<RateArg>,
    /// Downloads of each of the user's sessions, bytes per second; 0: the server's
    /// bandwidth.session_download.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    session_download_rate: Option<RateArg>,
}

/// A rate given on the command line; `None`: 0, the limit removed.
#[derive(Clone, Copy)]
struct RateArg(Option<Rate>);

fn parse_rate(text: &str) -> Result<RateArg, String> {
    Rate::parse(text).map(RateArg)
}

impl BandwidthArgs {
    /// Applies the given flags to `entry`.
    pub fn apply(&self, entry: &mut UserEntry) -> anyhow::Result<()> {
        let limits = &mut entry.bandwidth;
        for (flag, field) in [
            (self.upload_rate, &mut limits.upload),
            (self.download_rate, &mut limits.download),
            (self.session_upload_rate, &mut limits.session_upload),
            (self.session_download_rate, &mut limits.session_download),
        ] {
            if let Some(RateArg(rate)) = flag {
                *field = rate;
            }
        }
        Ok(())
    }
}
