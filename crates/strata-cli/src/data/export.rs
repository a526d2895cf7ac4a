//! `strata export`: every event of `$all` (up to the head at start) as JSON
//! lines, ids kept, to a file or stdout. See ADR 0007 for the format.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use super::{progress, write_event, DataError, READ_PAGE_EVENTS};
use crate::data::store_or_server::{Target, TargetArgs};
use strata_client::AllFilter;

/// `strata export` options.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Where: `--store` or `--server`.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only events after this position (exclusive): the position an earlier
    /// export ended at, for an incremental export.
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// The file to write (replaced if it exists), or `-` for stdout.
    #[arg(long, default_value = "-")]
    pub out: PathBuf,
}

/// Runs `strata export`.
pub async fn run(target: &Target, args: ExportArgs) -> Result<(), DataError> {
    // A snapshot: events committed while exporting are left for the next
    // (incremental) export, so the end position printed is exact.
    let head = target.head_position().await?;
    let to_stdout = args.out.as_os_str() == "-";
    let file = if to_stdout {
        None
    } else {
        Some(
            File::create(&args.out)
                .map_err(|e| DataError::io(format!("creating {}", args.out.display()), e))?,
        )
    };
    let mut out: Box<dyn Write> = match &file {
        Some(f) => Box::new(BufWriter::new(f)),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let bar = progress(Some(head.saturating_sub(args.after)), "exporting");
    let filter = AllFilter::default();
    let mut after = args.after;
    let mut count = 0u64;
    let mut last = args.after;
    'pages: while after < head {
        let (events, next) = target.read_all(after, READ_PAGE_EVENTS, &filter).await?;
        for e in &events {
            if e.position.0 > head {
                break 'pages;
            }
            write_event(&mut out, e)?;
            count += 1;
            last = e.position.0;
        }
        bar.set_position(last - args.after);
        match next {
            Some(n) if n > after => after = n,
            _ => break,
        }
    }
    out.flush()
        .map_err(|e| DataError::io(format!("writing {}", args.out.display()), e))?;
    drop(out);
    if let Some(f) = file {
        f.sync_all()
            .map_err(|e| DataError::io(format!("syncing {}", args.out.display()), e))?;
    }
    bar.finish_and_clear();
    let end = head.max(args.after);
    eprintln!(
        "exported {count} event(s) from {} up to position {end} (continue with --after {end})",
        target.describe()
    );
    Ok(())
}
