//! `iog market …`

use std::process::ExitCode;

use crate::args::{Global, MarketArgs, MarketCommand};
use crate::display::{self, print_json};

pub async fn market(global: &Global, args: MarketArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        MarketCommand::Search { query } => {
            // Parsed here too, so a mistake is reported without a round trip.
            let parsed: iog_sched::query::Query = query.parse().map_err(|err| anyhow::anyhow!("{err}"))?;
            let client = global.client()?;
            let market = client.market(&parsed.to_string()).await?;
            if global.json {
                print_json(&market)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut table =
                display::table(&["worker", "region", "price/device-h", "devices", "free", "trust", "state", "runs"]);
            for offer in &market.offers {
                let state = match (offer.available, offer.idle_only) {
                    (true, false) => "available",
                    (true, true) => "available (owner idle)",
                    (false, _) => "paused or out of hours",
                };
                table.add_row(vec![
                    offer.worker_id.short().to_owned(),
                    offer.region.clone(),
                    offer.price_io_per_device_hour.clone(),
                    display::group(&offer.group),
                    offer.free.to_string(),
                    offer.trust.to_string(),
                    state.to_owned(),
                    offer.software.iter().filter_map(|s| s.split(' ').next()).collect::<Vec<_>>().join(", "),
                ]);
            }
            println!("{table}");
            let shown = market.offers.len();
            let query = if market.query.is_empty() { "everything".to_owned() } else { format!("'{}'", market.query) };
            if market.n_more > 0 {
                println!("{shown} device groups match {query}; {} more not shown", market.n_more);
            } else {
                println!("{shown} device groups match {query}");
            }
            if !parsed.to_string().is_empty() && shown > 0 {
                let requirements = parsed.requirements();
                println!("as a job's [resources]: {}", display::resources_toml(&requirements));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
